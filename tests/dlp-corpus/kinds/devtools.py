"""Developer tools: source hosts, CI/CD, package registries, observability and error tracking.

GitHub and npm tokens are fabricated with a valid checksum (the last 6 base62 characters are
the CRC-32 of the 30 random ones), as the services issue them; a second `github-pat` kind draws
tokens of the right shape whose checksum is wrong, as hand-made test tokens are. Formats without
a vendor prefix come with the names people assign them to (`DD_API_KEY`, `datadog.api_key`).
"""

import random
import uuid as _uuid
import zlib

from . import ALNUM, B64, HEX, LETTERS, LOWER, LOWER_ALNUM, UPPER_ALNUM, URL_SAFE, Kind, Secret, rand, token

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE32_LOWER = LOWER + "234567"


def checksummed(r: random.Random) -> str:
    """30 random base62 characters and their CRC-32 in 6 base62 digits (GitHub, npm)."""
    body = rand(r, ALNUM, 30)
    n, tail = zlib.crc32(body.encode()), ""
    for _ in range(6):
        n, digit = divmod(n, 62)
        tail = BASE62[digit] + tail
    return body + tail


def uuid(r: random.Random) -> str:
    return str(_uuid.UUID(int=r.getrandbits(128), version=4))


def plain(alphabet: str, n: int):
    return lambda r: Secret(rand(r, alphabet, n))


def prefixed(prefix: str, alphabet: str, n: int):
    return lambda r: token(prefix, rand(r, alphabet, n))


def gitlab(prefix: str, n: int = 20):
    return prefixed(prefix, URL_SAFE, n)


DD_API = ("DD_API_KEY", "DATADOG_API_KEY", "datadog.api_key", "datadog_api_key", '"datadogApiKey":')
DD_APP = ("DD_APP_KEY", "DATADOG_APP_KEY", "DD_APPLICATION_KEY", "datadog_app_key")

KINDS = [
    # Source hosts.
    Kind("github-pat", "credential", lambda r: token("ghp_", checksummed(r)), ("GITHUB_TOKEN", "GH_TOKEN"), "GitHub docs: token formats; GitHub blog 2021-04-05 (checksum)"),
    Kind("github-pat", "credential", lambda r: token("ghp_", rand(r, ALNUM, 36)), ("GITHUB_TOKEN",), "GitHub token shape without a valid checksum"),
    Kind("github-app-token", "credential", lambda r: token(r.choice(["ghs_", "ghu_"]), checksummed(r)), ("GH_TOKEN",), "GitHub docs: token formats"),
    Kind("github-oauth-token", "credential", lambda r: token(r.choice(["gho_", "ghr_"]), checksummed(r)), ("oauth_token",), "GitHub docs: token formats"),
    Kind("github-fine-grained-pat", "credential", lambda r: token("github_pat_", rand(r, ALNUM, 22) + "_" + rand(r, ALNUM, 59)), ("GITHUB_TOKEN",), "GitHub docs: fine-grained tokens"),
    Kind("gitlab-pat", "credential", gitlab("glpat-"), ("GITLAB_TOKEN", "PRIVATE-TOKEN:"), "GitLab docs: token prefixes"),
    Kind("gitlab-ci-job-token", "credential", lambda r: token("glcbt-", rand(r, HEX, 2) + "_" + rand(r, URL_SAFE, 20)), ("CI_JOB_TOKEN", "JOB-TOKEN:"), "GitLab docs: token prefixes"),
    Kind("gitlab-incoming-mail-token", "credential", gitlab("glimt-", 25), (), "GitLab docs: token prefixes"),
    Kind("gitlab-feed-token", "credential", gitlab("glft-"), ("feed_token",), "GitLab docs: token prefixes"),
    Kind("gitlab-scim-token", "credential", gitlab("glsoat-"), (), "GitLab docs: token prefixes"),
    Kind("gitlab-oauth-app-secret", "credential", gitlab("gloas-", 64), ("GITLAB_CLIENT_SECRET",), "GitLab docs: token prefixes"),
    Kind("gitlab-agent-token", "credential", gitlab("glagent-", 50), (), "GitLab docs: token prefixes"),
    Kind("gitlab-feature-flag-client-token", "credential", gitlab("glffct-"), ("UNLEASH_API_TOKEN",), "GitLab docs: token prefixes"),
    Kind("gitlab-runner-token", "credential", gitlab("glrt-"), ("token",), "GitLab docs: token prefixes"),
    Kind("bitbucket-access-token", "credential", lambda r: token("ATCTT3", "xFfGN0" + rand(r, URL_SAFE, 180) + "=" + rand(r, "0123456789ABCDEF", 8)), ("BITBUCKET_ACCESS_TOKEN",), "Atlassian docs: access tokens"),
    Kind("azure-devops-pat", "credential", plain(BASE32_LOWER, 52), ("AZURE_DEVOPS_PAT", "AZURE_DEVOPS_EXT_PAT", "ADO_PAT", "SYSTEM_ACCESSTOKEN"), "Azure DevOps docs: personal access tokens"),
    Kind("gitea-token", "credential", plain(HEX, 40), ("GITEA_TOKEN", "FORGEJO_TOKEN", "CODEBERG_TOKEN"), "Gitea docs: API usage"),
    Kind("youtrack-token", "credential", lambda r: token("perm:", rand(r, B64, 8) + "==." + rand(r, B64, 8) + "==." + rand(r, ALNUM, 30)), ("YOUTRACK_TOKEN",), "JetBrains Hub docs: permanent tokens"),
    # CI/CD.
    Kind("circleci-legacy-token", "credential", plain(HEX, 40), ("CIRCLE_TOKEN", "CIRCLECI_TOKEN", "CIRCLECI_API_TOKEN"), "CircleCI docs: API tokens"),
    Kind("travis-ci-token", "credential", plain(URL_SAFE, 22), ("TRAVIS_TOKEN", "TRAVIS_API_TOKEN"), "Travis CI docs: API authentication"),
    Kind("buildkite-token", "credential", prefixed("bkua_", HEX, 40), ("BUILDKITE_API_TOKEN",), "Buildkite docs: API access tokens"),
    Kind("buildkite-agent-token", "credential", plain(ALNUM, 50), ("BUILDKITE_AGENT_TOKEN",), "Buildkite docs: agent tokens"),
    Kind("drone-token", "credential", plain(ALNUM, 32), ("DRONE_TOKEN",), "Drone docs: CLI authentication"),
    Kind("jenkins-api-token", "credential", lambda r: Secret("11" + rand(r, HEX, 32)), ("JENKINS_API_TOKEN", "JENKINS_TOKEN"), "Jenkins docs: API tokens"),
    Kind("teamcity-token", "credential", lambda r: token("eyJ0eXAiOiAiVENWMiJ9.", rand(r, URL_SAFE, 36) + "." + rand(r, URL_SAFE, 48)), ("TEAMCITY_TOKEN",), "TeamCity docs: access tokens"),
    Kind("harness-token", "credential", lambda r: token(r.choice(["pat.", "sat."]), rand(r, URL_SAFE, 22) + "." + rand(r, HEX, 24) + "." + rand(r, ALNUM, 20)), ("HARNESS_API_KEY",), "Harness docs: API keys"),
    Kind("octopus-deploy-api-key", "credential", prefixed("API-", UPPER_ALNUM, 26), ("OCTOPUS_API_KEY",), "Octopus docs: API keys"),
    Kind("snyk-token", "credential", lambda r: Secret(uuid(r)), ("SNYK_TOKEN", "SNYK_API_TOKEN"), "Snyk docs: authentication"),
    Kind("sonarqube-token", "credential", lambda r: token(r.choice(["squ_", "sqp_", "sqa_"]), rand(r, HEX, 40)), ("SONAR_TOKEN", "sonar.token"), "SonarQube docs: token types"),
    Kind("codecov-token", "credential", lambda r: Secret(uuid(r)), ("CODECOV_TOKEN",), "Codecov docs: upload token"),
    Kind("coveralls-token", "credential", plain(ALNUM, 32), ("COVERALLS_REPO_TOKEN",), "Coveralls docs: repo token"),
    Kind("circleci-token", "credential", lambda r: token("CCIPAT_", rand(r, ALNUM, 22) + "_" + rand(r, HEX, 40)), ("CIRCLECI_TOKEN",), "CircleCI docs: API tokens"),
    # Package registries.
    Kind("npm-token", "credential", lambda r: token("npm_", checksummed(r)), ("NPM_TOKEN", "//registry.npmjs.org/:_authToken"), "GitHub blog 2021-09-23: npm token format"),
    Kind("rubygems-api-key", "credential", prefixed("rubygems_", HEX, 48), ("GEM_HOST_API_KEY",), "RubyGems guides: API key"),
    Kind("nuget-api-key", "credential", prefixed("oy2", LOWER_ALNUM, 43), ("NUGET_API_KEY",), "NuGet docs: API keys"),
    Kind("crates-io-token", "credential", prefixed("cio", ALNUM, 32), ("CARGO_REGISTRY_TOKEN",), "crates.io: API tokens"),
    Kind("jfrog-artifactory-token", "credential", prefixed("AKCp", ALNUM, 69), ("ARTIFACTORY_API_KEY",), "JFrog docs: API keys"),
    Kind("jfrog-artifactory-token", "credential", prefixed("cmVmdGtu", ALNUM, 56), ("ARTIFACTORY_TOKEN",), "JFrog docs: reference tokens"),
    Kind("packagist-token", "credential", lambda r: token("packagist_" + r.choice(["uut", "ort", "out"]) + "_", rand(r, HEX, 68)), ("COMPOSER_AUTH",), "Private Packagist docs: tokens"),
    Kind("clojars-token", "credential", prefixed("CLOJARS_", LOWER_ALNUM, 60), ("CLOJARS_PASSWORD",), "Clojars wiki: deploy tokens"),
    Kind("hex-api-key", "credential", plain(HEX, 32), ("HEX_API_KEY",), "Hex docs: API keys"),
    Kind("cocoapods-trunk-token", "credential", plain(HEX, 32), ("COCOAPODS_TRUNK_TOKEN",), "CocoaPods guides: trunk"),
    Kind("docker-hub-token", "credential", prefixed("dckr_pat_", URL_SAFE, 27), ("DOCKERHUB_TOKEN",), "Docker docs: access tokens"),
    # Observability and error tracking.
    Kind("sentry-legacy-token", "credential", plain(HEX, 64), ("SENTRY_AUTH_TOKEN", "sentry.auth_token"), "Sentry docs: auth tokens"),
    Kind("grafana-api-key", "credential", lambda r: token("eyJrIjoi", rand(r, B64, 90) + "=="), ("GRAFANA_API_KEY",), "Grafana docs: API keys"),
    Kind("newrelic-browser-key", "credential", prefixed("NRJS-", HEX, 19), (), "New Relic docs: API keys"),
    Kind("newrelic-insights-key", "credential", lambda r: token(r.choice(["NRII-", "NRIQ-"]), rand(r, URL_SAFE, 32)), ("X-Insert-Key:",), "New Relic docs: Insights keys"),
    Kind("newrelic-admin-key", "credential", lambda r: token(r.choice(["NRAA-", "NRRA-"]), rand(r, HEX, 27)), (), "New Relic docs: API keys"),
    Kind("newrelic-license-key", "credential", lambda r: Secret(rand(r, HEX, 36) + "NRAL"), ("NEW_RELIC_LICENSE_KEY", "newrelic.license_key"), "New Relic docs: license keys"),
    Kind("datadog-api-key", "credential", plain(HEX, 32), DD_API, "Datadog docs: API and application keys"),
    Kind("datadog-app-key", "credential", plain(HEX, 40), DD_APP, "Datadog docs: API and application keys"),
    Kind("honeycomb-ingest-key", "credential", lambda r: token(r.choice(["hcaik_", "hcxik_"]), rand(r, LOWER_ALNUM, 58)), ("HONEYCOMB_API_KEY",), "Honeycomb docs: API keys"),
    Kind("honeycomb-api-key", "credential", plain(ALNUM, 22), ("HONEYCOMB_API_KEY", "HONEYCOMB_WRITEKEY"), "Honeycomb docs: API keys (classic)"),
    Kind("splunk-hec-token", "credential", lambda r: Secret(uuid(r)), ("SPLUNK_HEC_TOKEN", "splunk_token", "Authorization: Splunk"), "Splunk docs: HTTP Event Collector"),
    Kind("sumologic-access-key", "credential", plain(ALNUM, 64), ("SUMO_ACCESS_KEY", "SUMOLOGIC_ACCESSKEY"), "Sumo Logic docs: access keys"),
    Kind("rollbar-access-token", "credential", plain(HEX, 32), ("ROLLBAR_ACCESS_TOKEN", "ROLLBAR_TOKEN"), "Rollbar docs: access tokens"),
    Kind("bugsnag-api-key", "credential", plain(HEX, 32), ("BUGSNAG_API_KEY", "bugsnag.apiKey"), "Bugsnag docs: API key"),
    Kind("launchdarkly-key", "credential", lambda r: token(r.choice(["api-", "sdk-", "mob-"]), uuid(r)), ("LAUNCHDARKLY_SDK_KEY", "LD_SDK_KEY"), "LaunchDarkly docs: keys"),
    Kind("segment-write-key", "credential", plain(ALNUM, 32), ("SEGMENT_WRITE_KEY",), "Segment docs: write keys"),
    Kind("mixpanel-api-secret", "credential", plain(HEX, 32), ("MIXPANEL_API_SECRET", "MIXPANEL_SECRET"), "Mixpanel docs: API secret"),
    Kind("amplitude-api-key", "credential", plain(HEX, 32), ("AMPLITUDE_API_KEY", "AMPLITUDE_SECRET_KEY"), "Amplitude docs: API keys"),
    Kind("posthog-api-key", "credential", lambda r: token(r.choice(["phc_", "phx_"]), rand(r, ALNUM, 43)), ("POSTHOG_API_KEY",), "PostHog docs: API keys"),
    Kind("logzio-token", "credential", plain(LETTERS, 32), ("LOGZIO_TOKEN", "LOGZIO_SHIPPING_TOKEN"), "Logz.io docs: shipping tokens"),
    Kind("loggly-token", "credential", lambda r: Secret(uuid(r)), ("LOGGLY_TOKEN", "LOGGLY_CUSTOMER_TOKEN"), "Loggly docs: customer tokens"),
    Kind("papertrail-token", "credential", plain(ALNUM, 20), ("PAPERTRAIL_API_TOKEN",), "Papertrail docs: API token"),
    Kind("betterstack-token", "credential", plain(ALNUM, 24), ("LOGTAIL_SOURCE_TOKEN", "BETTERSTACK_SOURCE_TOKEN"), "Better Stack docs: source tokens"),
    Kind("axiom-token", "credential", lambda r: token(r.choice(["xaat-", "xapt-"]), uuid(r)), ("AXIOM_TOKEN",), "Axiom docs: API tokens"),
    Kind("elastic-apm-secret", "credential", plain(URL_SAFE, 32), ("ELASTIC_APM_SECRET_TOKEN", "ELASTIC_APM_API_KEY"), "Elastic APM docs: secret token"),
    Kind("opsgenie-api-key", "credential", lambda r: Secret(uuid(r)), ("OPSGENIE_API_KEY", "Authorization: GenieKey"), "Opsgenie docs: API key"),
    Kind("pagerduty-api-key", "credential", lambda r: token("u+", rand(r, URL_SAFE, 18)), ("PAGERDUTY_TOKEN", "PAGERDUTY_API_KEY"), "PagerDuty docs: REST API keys"),
    Kind("statuspage-api-key", "credential", lambda r: Secret(uuid(r)), ("STATUSPAGE_API_KEY",), "Statuspage docs: API keys"),
    Kind("checkly-api-key", "credential", lambda r: token("cu_", rand(r, HEX, 32)), ("CHECKLY_API_KEY",), "Checkly docs: API keys"),
    Kind("codacy-token", "credential", plain(ALNUM, 32), ("CODACY_PROJECT_TOKEN", "CODACY_API_TOKEN"), "Codacy docs: tokens"),
    Kind("deepsource-token", "credential", prefixed("dsp_", HEX, 40), ("DEEPSOURCE_PAT",), "DeepSource docs: personal access tokens"),
    Kind("postman-api-key", "credential", lambda r: token("PMAK-", rand(r, HEX, 24) + "-" + rand(r, HEX, 34)), ("POSTMAN_API_KEY",), "Postman docs: API keys"),
    Kind("sentry-token", "credential", prefixed("sntryu_", HEX, 64), ("SENTRY_AUTH_TOKEN",), "Sentry docs: user auth tokens"),
]
