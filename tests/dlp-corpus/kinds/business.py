"""Business SaaS: chat and messaging, email delivery, payments and commerce, CRM, support,
productivity and identity providers.

Formats with a vendor prefix (`xoxb-`, `xkeysib-`, `EZAK`) are self-describing; the others are
only recognisable next to a name that says whose they are, so their `names` are the ones the
vendors' docs and SDKs use.
"""

from . import ALNUM, B64, DIGITS, HEX, HEX_UPPER, LOWER_ALNUM, UPPER_ALNUM, URL_SAFE, Kind, Secret, Snippet, rand, snippet, token


def _uuid(r):
    h = rand(r, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _plain(alphabet, n):
    return lambda r: Secret(rand(r, alphabet, n))


def _slack_bot(r):
    return token("xoxb-", f"{rand(r, DIGITS, 12)}-{rand(r, DIGITS, 13)}-{rand(r, ALNUM, 24)}")


def _slack_user(r):
    return token("xoxp-", f"{rand(r, DIGITS, 12)}-{rand(r, DIGITS, 12)}-{rand(r, DIGITS, 13)}-{rand(r, HEX, 32)}")


def _slack_legacy(r):
    prefix = r.choice(["xoxs-", "xoxo-"])
    return token(prefix, f"{rand(r, DIGITS, 11)}-{rand(r, DIGITS, 12)}-{rand(r, DIGITS, 12)}-{rand(r, HEX, 64)}")


def _slack_webhook(r):
    return token("https://hooks.slack.com/", f"services/T{rand(r, UPPER_ALNUM, 10)}/B{rand(r, UPPER_ALNUM, 10)}/{rand(r, ALNUM, 24)}")


def _slack_workflow(r):
    if r.random() < 0.5:
        body = f"workflows/T{rand(r, UPPER_ALNUM, 10)}/A{rand(r, UPPER_ALNUM, 10)}/{rand(r, DIGITS, 18)}/{rand(r, ALNUM, 24)}"
    else:
        body = f"triggers/T{rand(r, UPPER_ALNUM, 10)}/{rand(r, DIGITS, 13)}/{rand(r, HEX, 32)}"
    return token("https://hooks.slack.com/", body)


def _teams(r):
    body = f"webhookb2/{_uuid(r)}@{_uuid(r)}/IncomingWebhook/{rand(r, ALNUM, 32)}/{_uuid(r)}"
    if r.random() < 0.5:
        body += f"/V2{rand(r, URL_SAFE, 45)}"
    return token(f"https://{rand(r, LOWER_ALNUM, 6)}.webhook.office.com/", body)


def _power_automate(r):
    """An HTTP-trigger URL: only the `sig` is private."""
    head = f"https://prod-{rand(r, DIGITS, 2)}.westeurope.logic.azure.com:443/workflows/{rand(r, HEX, 32)}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig="
    sig = rand(r, URL_SAFE, 43)
    return Snippet(head + sig, ((len(head), len(head) + len(sig)),))


def _google_chat(r):
    """A webhook URL: the space id is not secret; the API key and the token are."""
    space = rand(r, ALNUM, 7)
    return snippet(
        f"https://chat.googleapis.com/v1/spaces/AAAA{space}/messages?key=AIza{{key}}&token={{tok}}%3D",
        key=rand(r, URL_SAFE, 35), tok=rand(r, URL_SAFE, 43),
    )


def _discord_webhook(r):
    return token("https://discord.com/api/webhooks/", f"{rand(r, DIGITS, 19)}/{rand(r, URL_SAFE, 68)}")


def _twitter_bearer(r):
    body = f"{rand(r, UPPER_ALNUM, 1)}{rand(r, ALNUM, 20)}%2B{rand(r, ALNUM, 30)}%3D{rand(r, ALNUM, 50)}"
    return token("AAAAAAAAAAAAAAAAAAAAA", body)


def _adyen(r):
    return token("AQE", f"{rand(r, B64, 95)}==-{rand(r, B64, 43)}=-{rand(r, ALNUM, 16)}")


def _ifttt(r):
    """A Webhooks trigger URL: only the key is private."""
    head = f"https://maker.ifttt.com/trigger/{r.choice(['door_open', 'build_done', 'alert'])}/with/key/"
    key = rand(r, URL_SAFE, 22)
    return Snippet(head + key, ((len(head), len(head) + len(key)),))


C = "credential"

KINDS: list[Kind] = [
    # Chat and messaging.
    Kind("slack-bot-token", C, _slack_bot, ("SLACK_BOT_TOKEN",), "Slack docs: token types"),
    Kind("slack-bot-token", C, lambda r: token("xoxb-", f"{rand(r, DIGITS, 11)}-{rand(r, ALNUM, 24)}"), ("SLACK_BOT_TOKEN",), "Slack docs: legacy bot tokens"),
    Kind("slack-user-token", C, _slack_user, ("SLACK_USER_TOKEN",), "Slack docs: token types"),
    Kind("slack-token", C, lambda r: token("xoxe.xoxp-", f"1-{rand(r, ALNUM, 150)}"), ("SLACK_CONFIG_TOKEN",), "Slack docs: configuration tokens"),
    Kind("slack-token", C, _slack_legacy, ("SLACK_LEGACY_TOKEN",), "Slack docs: legacy tokens"),
    Kind("slack-app-token", C, lambda r: token("xapp-", f"1-A{rand(r, UPPER_ALNUM, 10)}-{rand(r, DIGITS, 13)}-{rand(r, HEX, 64)}"), ("SLACK_APP_TOKEN",), "Slack docs: app-level tokens"),
    Kind("slack-webhook-url", C, _slack_webhook, ("SLACK_WEBHOOK_URL",), "Slack docs: incoming webhooks"),
    Kind("slack-webhook-url", C, _slack_workflow, ("SLACK_WORKFLOW_WEBHOOK",), "Slack docs: workflow webhook triggers"),
    Kind("discord-webhook-url", C, _discord_webhook, ("DISCORD_WEBHOOK_URL",), "Discord docs: webhooks"),
    Kind("discord-bot-token", C, lambda r: token("MT", f"{rand(r, ALNUM, 24)}.{rand(r, URL_SAFE, 6)}.{rand(r, URL_SAFE, 38)}"), ("DISCORD_TOKEN",), "Discord docs: bot tokens"),
    Kind("discord-token", C, lambda r: Secret(f"{r.choice('NO')}{rand(r, ALNUM, 25)}.{rand(r, URL_SAFE, 6)}.{rand(r, URL_SAFE, 27)}"), ("DISCORD_TOKEN", "DISCORD_BOT_TOKEN", "discord_token"), "Discord docs: bot tokens before 2022"),
    Kind("discord-token", C, _plain(HEX, 64), ("DISCORD_API_TOKEN",), "Discord docs: application credentials"),
    Kind("discord-token", C, _plain(URL_SAFE, 32), ("DISCORD_CLIENT_SECRET", "discord.client_secret"), "Discord docs: OAuth2 client secret"),
    Kind("telegram-bot-token", C, lambda r: Secret(f"{rand(r, DIGITS, 10)}:AA{rand(r, URL_SAFE, 33)}"), ("TELEGRAM_BOT_TOKEN",), "Telegram Bot API docs"),
    Kind("microsoft-teams-webhook-url", C, _teams, ("TEAMS_WEBHOOK_URL",), "Microsoft docs: Teams incoming webhooks"),
    Kind("power-automate-webhook-url", C, _power_automate, (), "Microsoft docs: Power Automate HTTP request trigger"),
    Kind("google-chat-webhook-url", C, _google_chat, (), "Google Chat docs: incoming webhooks"),
    Kind("mattermost-token", C, _plain(LOWER_ALNUM, 26), ("MATTERMOST_TOKEN", "MATTERMOST_ACCESS_TOKEN", "mattermost_bot_token"), "Mattermost docs: personal access tokens"),
    Kind("rocketchat-token", C, _plain(URL_SAFE, 43), ("ROCKETCHAT_AUTH_TOKEN", "ROCKET_CHAT_TOKEN"), "Rocket.Chat docs: personal access tokens"),
    Kind("zulip-api-key", C, _plain(ALNUM, 32), ("ZULIP_API_KEY", "zulip_key"), "Zulip docs: API keys"),
    Kind("twitch-token", C, _plain(LOWER_ALNUM, 30), ("TWITCH_CLIENT_SECRET", "TWITCH_OAUTH_TOKEN", "twitch_access_token"), "Twitch docs: authentication"),
    Kind("line-channel-token", C, lambda r: Secret(rand(r, B64, 171) + "="), ("LINE_CHANNEL_ACCESS_TOKEN", "lineChannelAccessToken"), "LINE Messaging API docs: channel access tokens"),
    Kind("line-channel-token", C, _plain(HEX, 32), ("LINE_CHANNEL_SECRET",), "LINE Messaging API docs: channel secret"),
    Kind("facebook-access-token", C, lambda r: token("EAA", rand(r, ALNUM, 180)), ("FACEBOOK_ACCESS_TOKEN", "WHATSAPP_TOKEN", "META_ACCESS_TOKEN"), "Meta docs: access tokens"),
    Kind("facebook-app-secret", C, lambda r: Secret(f"{rand(r, DIGITS, 16)}|{rand(r, URL_SAFE, 27)}"), ("FACEBOOK_APP_TOKEN", "FB_APP_ACCESS_TOKEN"), "Meta docs: app access tokens"),
    Kind("facebook-app-secret", C, _plain(HEX, 32), ("FACEBOOK_APP_SECRET", "FB_APP_SECRET", "facebook.app_secret"), "Meta docs: app secret"),
    Kind("twitter-bearer-token", C, _twitter_bearer, ("TWITTER_BEARER_TOKEN", "X_BEARER_TOKEN"), "X API docs: app-only bearer token"),
    Kind("twitter-api-secret", C, _plain(ALNUM, 25), ("TWITTER_API_KEY", "TWITTER_CONSUMER_KEY"), "X API docs: API key"),
    Kind("twitter-api-secret", C, _plain(ALNUM, 50), ("TWITTER_API_SECRET", "TWITTER_CONSUMER_SECRET"), "X API docs: API key and secret"),
    Kind("twitter-api-secret", C, lambda r: Secret(f"{rand(r, DIGITS, 19)}-{rand(r, ALNUM, 40)}"), ("TWITTER_ACCESS_TOKEN",), "X API docs: access token"),
    Kind("twitter-api-secret", C, _plain(ALNUM, 45), ("TWITTER_ACCESS_TOKEN_SECRET", "twitter_access_secret"), "X API docs: access token secret"),
    Kind("linkedin-client-secret", C, lambda r: Secret(f"WPL_AP1.{rand(r, ALNUM, 16)}.{rand(r, ALNUM, 6)}=="), ("LINKEDIN_CLIENT_SECRET",), "LinkedIn docs: client credentials"),
    Kind("reddit-client-secret", C, _plain(URL_SAFE, 27), ("REDDIT_CLIENT_SECRET", "reddit_secret"), "Reddit API docs: OAuth2"),
    Kind("pusher-secret", C, _plain(HEX, 20), ("PUSHER_APP_SECRET", "PUSHER_SECRET"), "Pusher docs: app keys"),
    Kind("ably-api-key", C, lambda r: Secret(f"{rand(r, URL_SAFE, 6)}.{rand(r, URL_SAFE, 6)}:{rand(r, URL_SAFE, 43)}"), ("ABLY_API_KEY", "ABLY_KEY"), "Ably docs: API keys"),
    Kind("getstream-secret", C, _plain(LOWER_ALNUM, 64), ("STREAM_API_SECRET", "GETSTREAM_API_SECRET"), "Stream docs: API key and secret"),
    Kind("sendbird-api-token", C, _plain(HEX, 40), ("SENDBIRD_API_TOKEN", "SENDBIRD_MASTER_API_TOKEN"), "Sendbird docs: API tokens"),
    Kind("intercom-access-token", C, lambda r: token("dG9rO", rand(r, B64, 54) + "="), ("INTERCOM_ACCESS_TOKEN",), "Intercom docs: access tokens"),
    Kind("intercom-api-key", C, _plain(URL_SAFE, 60), ("INTERCOM_TOKEN", "INTERCOM_API_KEY"), "Intercom docs: access tokens"),
    Kind("gitter-token", C, _plain(URL_SAFE, 40), ("GITTER_TOKEN",), "Gitter docs: API tokens"),
    Kind("zoom-secret", C, _plain(ALNUM, 32), ("ZOOM_CLIENT_SECRET", "ZOOM_API_SECRET", "ZOOM_SECRET_TOKEN"), "Zoom docs: server-to-server OAuth"),
    Kind("vonage-api-secret", C, _plain(ALNUM, 16), ("VONAGE_API_SECRET", "NEXMO_API_SECRET"), "Vonage docs: API credentials"),
    Kind("messagebird-api-key", C, _plain(ALNUM, 25), ("MESSAGEBIRD_API_KEY", "MESSAGEBIRD_ACCESS_KEY"), "MessageBird docs: access keys"),
    Kind("plivo-auth-token", C, _plain(ALNUM, 40), ("PLIVO_AUTH_TOKEN",), "Plivo docs: auth credentials"),
    Kind("sinch-secret", C, _plain(ALNUM, 30), ("SINCH_KEY_SECRET", "SINCH_API_TOKEN"), "Sinch docs: access keys"),
    Kind("twilio-api-key", C, lambda r: token("SK", rand(r, HEX, 32)), ("TWILIO_API_KEY",), "Twilio docs: API keys"),
    Kind("twilio-auth-token", C, _plain(HEX, 32), ("TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET"), "Twilio docs: auth token"),
    # Email delivery.
    Kind("sendgrid-api-key", C, lambda r: token("SG.", f"{rand(r, URL_SAFE, 22)}.{rand(r, URL_SAFE, 43)}"), ("SENDGRID_API_KEY",), "SendGrid docs: API keys"),
    Kind("mailgun-api-key", C, lambda r: token("key-", rand(r, HEX, 32)), ("MAILGUN_API_KEY",), "Mailgun docs: API keys"),
    Kind("mailgun-private-key", C, lambda r: Secret(f"{rand(r, HEX, 32)}-{rand(r, HEX, 8)}-{rand(r, HEX, 8)}"), ("MAILGUN_API_KEY", "MAILGUN_WEBHOOK_SIGNING_KEY", "mailgun_private_key"), "Mailgun docs: API keys"),
    Kind("mailchimp-api-key", C, lambda r: Secret(f"{rand(r, HEX, 32)}-us{r.randint(1, 21)}"), ("MAILCHIMP_API_KEY",), "Mailchimp docs: API keys"),
    Kind("mandrill-api-key", C, _plain(URL_SAFE, 22), ("MANDRILL_API_KEY", "MANDRILL_KEY"), "Mailchimp Transactional docs"),
    Kind("postmark-token", C, lambda r: Secret(_uuid(r)), ("POSTMARK_SERVER_TOKEN", "POSTMARK_API_TOKEN", "X-Postmark-Server-Token"), "Postmark docs: API tokens"),
    Kind("brevo-api-key", C, lambda r: token("xkeysib-", f"{rand(r, HEX, 64)}-{rand(r, ALNUM, 16)}"), ("BREVO_API_KEY", "SENDINBLUE_API_KEY"), "Brevo docs: API keys"),
    Kind("brevo-api-key", C, lambda r: token("xsmtpsib-", f"{rand(r, HEX, 64)}-{rand(r, ALNUM, 16)}"), ("BREVO_SMTP_KEY",), "Brevo docs: SMTP keys"),
    Kind("mailjet-api-key", C, _plain(HEX, 32), ("MAILJET_SECRET_KEY", "MAILJET_API_SECRET", "MJ_APIKEY_PRIVATE"), "Mailjet docs: API keys"),
    Kind("sparkpost-api-key", C, _plain(HEX, 40), ("SPARKPOST_API_KEY",), "SparkPost docs: API keys"),
    Kind("resend-api-key", C, lambda r: token("re_", f"{rand(r, ALNUM, 8)}_{rand(r, ALNUM, 24)}"), ("RESEND_API_KEY",), "Resend docs: API keys"),
    Kind("loops-api-key", C, _plain(HEX, 32), ("LOOPS_API_KEY",), "Loops docs: API keys"),
    Kind("convertkit-api-secret", C, _plain(URL_SAFE, 43), ("CONVERTKIT_API_SECRET", "CONVERTKIT_API_KEY"), "Kit (ConvertKit) docs: API"),
    Kind("customerio-api-key", C, _plain(HEX, 20), ("CUSTOMERIO_API_KEY", "CUSTOMER_IO_TRACK_API_KEY"), "Customer.io docs: Track API keys"),
    Kind("customerio-api-key", C, _plain(HEX, 32), ("CUSTOMERIO_APP_API_KEY",), "Customer.io docs: App API keys"),
    # Payments and commerce.
    Kind("stripe-api-key", C, lambda r: token(r.choice(["sk_live_", "rk_live_", "sk_test_"]), rand(r, ALNUM, 99)), ("STRIPE_SECRET_KEY",), "Stripe docs: API keys"),
    Kind("stripe-api-key", C, lambda r: token("sk_live_", rand(r, ALNUM, 46)), ("CLERK_SECRET_KEY",), "Clerk docs: secret keys"),
    Kind("stripe-api-key", C, lambda r: token("sk_live_", rand(r, HEX, 40)), ("PAYSTACK_SECRET_KEY",), "Paystack docs: API keys"),
    Kind("stripe-webhook-secret", C, lambda r: token("whsec_", rand(r, ALNUM, 32)), ("STRIPE_WEBHOOK_SECRET",), "Stripe docs: webhook signatures"),
    Kind("braintree-access-token", C, lambda r: token("access_token$", f"production${rand(r, LOWER_ALNUM, 16)}${rand(r, HEX, 32)}"), ("BRAINTREE_ACCESS_TOKEN",), "Braintree docs: access tokens"),
    Kind("braintree-private-key", C, _plain(HEX, 32), ("BRAINTREE_PRIVATE_KEY", "braintree.private_key"), "Braintree docs: API keys"),
    Kind("paypal-client-secret", C, lambda r: Secret("E" + rand(r, URL_SAFE, 79)), ("PAYPAL_CLIENT_SECRET", "PAYPAL_SECRET"), "PayPal docs: REST API credentials"),
    Kind("square-access-token", C, lambda r: token("EAAA", rand(r, URL_SAFE, 60)), ("SQUARE_ACCESS_TOKEN",), "Square docs: access tokens"),
    Kind("square-oauth-secret", C, lambda r: token("sq0csp-", rand(r, URL_SAFE, 43)), ("SQUARE_APPLICATION_SECRET",), "Square docs: application secret"),
    Kind("adyen-api-key", C, _adyen, ("ADYEN_API_KEY",), "Adyen docs: API credentials"),
    Kind("checkout-secret-key", C, lambda r: token("sk_sbox_", rand(r, LOWER_ALNUM, 26)), ("CHECKOUT_SECRET_KEY", "CKO_SECRET_KEY"), "Checkout.com docs: API keys"),
    Kind("razorpay-key-secret", C, _plain(ALNUM, 24), ("RAZORPAY_KEY_SECRET", "RAZORPAY_SECRET"), "Razorpay docs: API keys"),
    Kind("flutterwave-secret-key", C, lambda r: token("FLWSECK", f"{r.choice(['-', '_TEST-'])}{rand(r, HEX, 32)}-X"), ("FLW_SECRET_KEY", "FLUTTERWAVE_SECRET_KEY"), "Flutterwave docs: API keys"),
    Kind("mollie-api-key", C, lambda r: Secret(r.choice(["live_", "test_"]) + rand(r, ALNUM, 30)), ("MOLLIE_API_KEY", "MOLLIE_KEY"), "Mollie docs: API keys"),
    Kind("coinbase-api-secret", C, lambda r: Secret(rand(r, B64, 86) + "=="), ("COINBASE_API_SECRET", "COINBASE_SECRET"), "Coinbase docs: API keys"),
    Kind("plaid-access-token", C, lambda r: token(f"access-{r.choice(['sandbox', 'development', 'production'])}-", _uuid(r)), ("PLAID_ACCESS_TOKEN",), "Plaid docs: access tokens"),
    Kind("plaid-secret", C, _plain(HEX, 30), ("PLAID_SECRET", "PLAID_SANDBOX_SECRET"), "Plaid docs: API keys"),
    Kind("gocardless-access-token", C, lambda r: Secret(r.choice(["live_", "sandbox_"]) + rand(r, URL_SAFE, 40)), ("GOCARDLESS_ACCESS_TOKEN", "GOCARDLESS_TOKEN"), "GoCardless docs: access tokens"),
    Kind("shopify-token", C, lambda r: token(r.choice(["shpat_", "shpca_", "shppa_", "shpss_"]), rand(r, HEX, 32)), ("SHOPIFY_ACCESS_TOKEN",), "Shopify docs: access tokens"),
    Kind("shippo-api-token", C, lambda r: token(r.choice(["shippo_live_", "shippo_test_"]), rand(r, HEX, 40)), ("SHIPPO_API_KEY",), "Shippo docs: API tokens"),
    Kind("easypost-api-key", C, lambda r: token(r.choice(["EZAK", "EZTK"]), rand(r, ALNUM, 54)), ("EASYPOST_API_KEY",), "EasyPost docs: API keys"),
    Kind("woocommerce-api-key", C, lambda r: token(r.choice(["ck_", "cs_"]), rand(r, HEX, 40)), ("WOOCOMMERCE_CONSUMER_KEY", "WC_CONSUMER_SECRET"), "WooCommerce REST API docs"),
    Kind("bigcommerce-access-token", C, _plain(LOWER_ALNUM, 31), ("BIGCOMMERCE_ACCESS_TOKEN",), "BigCommerce docs: API accounts"),
    Kind("paddle-api-key", C, lambda r: token(r.choice(["pdl_live_apikey_", "pdl_sdbx_apikey_"]), f"{rand(r, LOWER_ALNUM, 26)}_{rand(r, ALNUM, 22)}_{rand(r, ALNUM, 3)}"), ("PADDLE_API_KEY",), "Paddle Billing docs: API keys"),
    Kind("recurly-api-key", C, _plain(HEX, 32), ("RECURLY_API_KEY", "RECURLY_PRIVATE_KEY"), "Recurly docs: API keys"),
    Kind("chargebee-api-key", C, lambda r: Secret(r.choice(["live_", "test_"]) + rand(r, ALNUM, 34)), ("CHARGEBEE_API_KEY",), "Chargebee docs: API keys"),
    Kind("etsy-api-key", C, _plain(ALNUM, 24), ("ETSY_API_KEY", "ETSY_KEYSTRING"), "Etsy docs: API keys"),
    Kind("squarespace-api-key", C, lambda r: Secret(_uuid(r)), ("SQUARESPACE_API_KEY",), "Squarespace docs: API keys"),
    Kind("lob-api-key", C, lambda r: Secret(r.choice(["live_", "test_"]) + rand(r, HEX, 35)), ("LOB_API_KEY", "LOB_SECRET_KEY"), "Lob docs: API keys"),
    Kind("kraken-api-secret", C, lambda r: Secret(rand(r, B64, 86) + "=="), ("KRAKEN_API_SECRET", "KRAKEN_PRIVATE_KEY"), "Kraken docs: API keys"),
    Kind("kucoin-api-secret", C, lambda r: Secret(_uuid(r)), ("KUCOIN_API_SECRET",), "KuCoin docs: API keys"),
    Kind("bittrex-api-secret", C, _plain(ALNUM, 32), ("BITTREX_API_SECRET", "BITTREX_SECRET"), "Bittrex docs: API keys"),
    Kind("wise-api-token", C, lambda r: Secret(_uuid(r)), ("WISE_API_TOKEN", "TRANSFERWISE_API_TOKEN", "wise_token"), "Wise docs: personal API tokens"),
    # CRM, support, productivity and identity.
    Kind("hubspot-token", C, lambda r: token(f"pat-{r.choice(['na1', 'na2', 'eu1'])}-", _uuid(r)), ("HUBSPOT_ACCESS_TOKEN",), "HubSpot docs: private apps"),
    Kind("hubspot-api-key", C, lambda r: Secret(_uuid(r)), ("HUBSPOT_API_KEY", "hapikey"), "HubSpot docs: legacy API keys"),
    Kind("salesforce-access-token", C, lambda r: token("00D", f"{rand(r, ALNUM, 12)}!{rand(r, ALNUM, 4)}.{rand(r, ALNUM, 90)}"), ("SF_ACCESS_TOKEN", "SALESFORCE_ACCESS_TOKEN"), "Salesforce docs: OAuth access tokens"),
    Kind("freshbooks-access-token", C, _plain(ALNUM, 64), ("FRESHBOOKS_ACCESS_TOKEN",), "FreshBooks docs: OAuth tokens"),
    Kind("zendesk-api-token", C, _plain(ALNUM, 40), ("ZENDESK_API_TOKEN", "ZENDESK_TOKEN"), "Zendesk docs: API tokens"),
    Kind("freshdesk-api-key", C, _plain(ALNUM, 20), ("FRESHDESK_API_KEY",), "Freshdesk docs: API key"),
    Kind("asana-pat", C, lambda r: Secret(f"2/{rand(r, DIGITS, 16)}/{rand(r, DIGITS, 16)}:{rand(r, HEX, 32)}"), ("ASANA_TOKEN", "ASANA_ACCESS_TOKEN"), "Asana docs: personal access tokens"),
    Kind("airtable-pat", C, lambda r: token("pat", f"{rand(r, ALNUM, 14)}.{rand(r, HEX, 64)}"), ("AIRTABLE_API_KEY", "AIRTABLE_TOKEN"), "Airtable docs: personal access tokens"),
    Kind("linear-api-key", C, lambda r: token("lin_api_", rand(r, ALNUM, 40)), ("LINEAR_API_KEY",), "Linear docs: API keys"),
    Kind("notion-token", C, lambda r: token("ntn_", rand(r, DIGITS, 11) + rand(r, ALNUM, 35)), ("NOTION_TOKEN",), "Notion docs: integration tokens"),
    Kind("clickup-api-token", C, lambda r: token("pk_", f"{rand(r, DIGITS, 8)}_{rand(r, UPPER_ALNUM, 32)}"), ("CLICKUP_API_TOKEN",), "ClickUp docs: personal API token"),
    Kind("trello-token", C, lambda r: token("ATTA", rand(r, HEX, 64) + rand(r, HEX_UPPER, 8)), ("TRELLO_TOKEN",), "Trello docs: API tokens"),
    Kind("trello-api-key", C, _plain(ALNUM, 32), ("TRELLO_API_KEY", "TRELLO_KEY"), "Trello docs: API key"),
    Kind("figma-token", C, lambda r: token("figd_", rand(r, URL_SAFE, 40)), ("FIGMA_TOKEN", "FIGMA_ACCESS_TOKEN"), "Figma docs: personal access tokens"),
    Kind("miro-access-token", C, lambda r: token("eyJtaXJv", f"{rand(r, ALNUM, 22)}_{rand(r, URL_SAFE, 27)}"), ("MIRO_ACCESS_TOKEN",), "Miro docs: access tokens"),
    Kind("dropbox-short-lived-token", C, lambda r: token("sl.", r.choice(["B", "u."]) + rand(r, URL_SAFE, 140)), ("DROPBOX_ACCESS_TOKEN",), "Dropbox docs: short-lived tokens"),
    Kind("dropbox-token", C, lambda r: Secret(f"{rand(r, ALNUM, 11)}AAAAAAAAAA{rand(r, URL_SAFE, 43)}"), ("DROPBOX_REFRESH_TOKEN", "DROPBOX_TOKEN"), "Dropbox docs: long-lived tokens"),
    Kind("box-token", C, _plain(ALNUM, 32), ("BOX_CLIENT_SECRET", "BOX_DEVELOPER_TOKEN"), "Box docs: developer tokens"),
    Kind("typeform-token", C, lambda r: token("tfp_", rand(r, ALNUM, 59)), ("TYPEFORM_TOKEN",), "Typeform docs: personal access tokens"),
    Kind("contentful-token", C, lambda r: token("CFPAT-", rand(r, URL_SAFE, 43)), ("CONTENTFUL_MANAGEMENT_TOKEN",), "Contentful docs: personal access tokens"),
    Kind("sanity-token", C, lambda r: Secret("sk" + rand(r, ALNUM, 180)), ("SANITY_API_TOKEN", "SANITY_TOKEN"), "Sanity docs: API tokens"),
    Kind("algolia-admin-key", C, _plain(HEX, 32), ("ALGOLIA_ADMIN_KEY", "ALGOLIA_API_KEY", "ALGOLIA_WRITE_API_KEY"), "Algolia docs: API keys"),
    Kind("mapbox-secret-token", C, lambda r: token("sk.", f"eyJ1Ijoi{rand(r, URL_SAFE, 40)}.{rand(r, URL_SAFE, 22)}"), ("MAPBOX_SECRET_TOKEN",), "Mapbox docs: secret tokens"),
    Kind("okta-api-token", C, lambda r: Secret("00" + rand(r, URL_SAFE, 40)), ("OKTA_API_TOKEN",), "Okta docs: API tokens"),
    Kind("auth0-client-secret", C, _plain(URL_SAFE, 64), ("AUTH0_CLIENT_SECRET",), "Auth0 docs: application credentials"),
    Kind("stripe-api-key", C, lambda r: token("sk_test_", rand(r, ALNUM, 40)), ("WORKOS_API_KEY",), "WorkOS docs: API keys"),
    Kind("stytch-secret", C, lambda r: token(r.choice(["secret-test-", "secret-live-"]), rand(r, URL_SAFE, 36)), ("STYTCH_SECRET",), "Stytch docs: API keys"),
    Kind("duffel-token", C, lambda r: token(r.choice(["duffel_live_", "duffel_test_"]), rand(r, URL_SAFE, 43)), ("DUFFEL_ACCESS_TOKEN",), "Duffel docs: access tokens"),
    Kind("frameio-token", C, lambda r: token("fio-u-", rand(r, URL_SAFE, 64)), ("FRAMEIO_TOKEN",), "Frame.io docs: developer tokens"),
    Kind("docusign-secret", C, lambda r: Secret(_uuid(r)), ("DOCUSIGN_SECRET_KEY", "DOCUSIGN_CLIENT_SECRET"), "DocuSign docs: integration secret key"),
    Kind("zapier-webhook-url", C, lambda r: token("https://hooks.zapier.com/", f"hooks/catch/{rand(r, DIGITS, 7)}/{rand(r, LOWER_ALNUM, 7)}"), ("ZAPIER_WEBHOOK_URL",), "Zapier docs: catch hooks"),
    Kind("ifttt-webhook-key", C, _ifttt, (), "IFTTT docs: Webhooks service"),
]
