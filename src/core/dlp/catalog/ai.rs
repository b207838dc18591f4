//! AI and machine-learning providers: Anthropic, OpenAI and other model APIs, model hubs, AI
//! platforms and the tools agents call (search, crawling, sandboxes, tracing).
//!
//! Many providers copy OpenAI's `sk-…` shape (DeepSeek, DashScope, Moonshot, Stability) or issue
//! bare hex or alphanumeric keys (Mistral, AI21, Deepgram, AssemblyAI, Weights & Biases): those
//! are found only where they are assigned to one of the vendor's names (`DEEPSEEK_API_KEY=…`,
//! `Mistral(api_key="…")`, `wandb login …`). Prefixed formats are found anywhere.

use super::{assigned, named, vendor, END, END_B64, NAME_GAP, UUID};
use crate::core::dlp::detector::{DetectorSpec, Validator};

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    let mut all = model_providers();
    all.extend(named_providers());
    all.extend(platforms_and_tools());
    all
}

/// Model providers with a distinctive prefix.
fn model_providers() -> Vec<DetectorSpec> {
    vec![
        vendor(
            "anthropic-api-key",
            "Anthropic API key (sk-ant-api03- + 93 URL-safe characters + AA)",
            &["sk-ant-api03-"],
            "sk-ant-api03-[A-Za-z0-9_-]{93}AA",
            END,
        ),
        vendor(
            "anthropic-admin-key",
            "Anthropic Admin API key (sk-ant-admin01- + 93 URL-safe characters + AA)",
            &["sk-ant-admin01-"],
            "sk-ant-admin01-[A-Za-z0-9_-]{93}AA",
            END,
        ),
        vendor(
            "anthropic-oauth-token",
            "Anthropic OAuth access or refresh token, as used by Claude Code (sk-ant-oat01-, sk-ant-ort01- + 80–200 URL-safe characters)",
            &["sk-ant-oat01-", "sk-ant-ort01-"],
            "sk-ant-o[ar]t01-[A-Za-z0-9_-]{80,200}",
            END,
        ),
        vendor(
            "openai-api-key",
            "OpenAI API key: project, service-account, admin or legacy (sk-proj-, sk-svcacct-, sk-admin- + 40–250 URL-safe characters; sk- + 20 + T3BlbkFJ + 20)",
            &["sk-"],
            "sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{40,250}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
            END,
        ),
        vendor(
            "huggingface-token",
            "Hugging Face user access token (hf_ + 34 letters) or organization API token (api_org_ + 34 letters)",
            &["hf_", "api_org_"],
            "hf_[A-Za-z]{34}|api_org_[A-Za-z]{34}",
            END,
        ),
        vendor("groq-api-key", "Groq API key (gsk_ + 52 alphanumerics)", &["gsk_"], "gsk_[A-Za-z0-9]{52}", END),
        vendor("replicate-api-token", "Replicate API token (r8_ + 37 alphanumerics)", &["r8_"], "r8_[A-Za-z0-9]{37}", END),
        vendor("perplexity-api-key", "Perplexity API key (pplx- + 48 alphanumerics)", &["pplx-"], "pplx-[A-Za-z0-9]{48}", END),
        vendor("xai-api-key", "xAI (Grok) API key (xai- + 80 alphanumerics)", &["xai-"], "xai-[A-Za-z0-9]{80}", END),
        vendor(
            "openrouter-api-key",
            "OpenRouter API key (sk-or-v1- + 64 hex digits)",
            &["sk-or-v1-"],
            "sk-or-v1-[0-9a-f]{64}",
            END,
        ),
        vendor("cerebras-api-key", "Cerebras API key (csk- + 48 lower-case alphanumerics)", &["csk-"], "csk-[a-z0-9]{48}", END),
        vendor(
            "nvidia-api-key",
            "NVIDIA NGC / NIM API key (nvapi- + 64 URL-safe characters)",
            &["nvapi-"],
            "nvapi-[A-Za-z0-9_-]{64}",
            END,
        ),
        // `fw_` also starts firmware identifiers (`fw_loadFirmwareImageFromFlash`, 4.1 bits per
        // character): random keys of this length have 4.5 or more.
        vendor(
            "fireworks-api-key",
            "Fireworks AI API key (fw_ + 30–48 alphanumerics, random)",
            &["fw_"],
            "fw_[A-Za-z0-9]{30,48}",
            END,
        )
        .validated(Validator::MinEntropy(4.2)),
        vendor(
            "anyscale-api-key",
            "Anyscale Endpoints API key (esecret_ + 20–40 alphanumerics)",
            &["esecret_"],
            "esecret_[A-Za-z0-9]{20,40}",
            END,
        ),
        vendor(
            "voyage-api-key",
            "Voyage AI API key (pa- + 40–50 URL-safe characters, random)",
            &["pa-"],
            "pa-[A-Za-z0-9_-]{40,50}",
            END,
        )
        // `pa-` also starts kebab-case words (3.7 bits per character); random keys have ~5.
        .validated(Validator::MinEntropy(4.0)),
        vendor(
            "jina-api-key",
            "Jina AI API key (jina_ + 32 hex digits + 28 URL-safe characters)",
            &["jina_"],
            "jina_[0-9a-f]{32}[A-Za-z0-9_-]{28}",
            END,
        ),
        named(
            "together-api-key",
            "Together AI API key (tgp_v1_ + 43 URL-safe characters, or 64 hex digits assigned to a TOGETHER_…KEY name)",
            &["tgp_v1_", "together"],
            assigned(&format!("together{NAME_GAP}(?:key|token)"), "tgp_v1_[A-Za-z0-9_-]{43}|[0-9a-f]{64}", END).or_bare(),
        ),
        named(
            "elevenlabs-api-key",
            "ElevenLabs API key (sk_ + 48 hex digits, or 32 hex digits assigned to an ELEVENLABS_…KEY name or xi-api-key)",
            &["sk_", "elevenlabs", "xi-api-key"],
            assigned(&format!("elevenlabs{NAME_GAP}key|xi-api-key"), "sk_[0-9a-f]{48}|[0-9a-f]{32}", END).or_bare(),
        ),
    ]
}

/// Providers whose keys have no distinctive shape: found next to the vendor's names.
fn named_providers() -> Vec<DetectorSpec> {
    let key = |vendor: &str| format!("{vendor}{NAME_GAP}(?:key|token)");
    vec![
        named(
            "cohere-api-key",
            "Cohere API key (40 alphanumerics) assigned to a COHERE_…KEY/TOKEN name or CO_API_KEY",
            &["cohere", "co_api_key"],
            assigned("cohere[a-z0-9_.(-]{0,16}(?:key|token)|co_api_key", "[A-Za-z0-9]{40}", END),
        ),
        named(
            "mistral-api-key",
            "Mistral AI API key (32 alphanumerics) assigned to a MISTRAL_…KEY name",
            &["mistral"],
            assigned(&key("mistral"), "[A-Za-z0-9]{32}", END),
        ),
        named(
            "deepseek-api-key",
            "DeepSeek API key (sk- + 32 hex digits) assigned to a DEEPSEEK_…KEY name",
            &["deepseek"],
            assigned(&key("deepseek"), "sk-[0-9a-f]{32}", END),
        ),
        named(
            "dashscope-api-key",
            "Alibaba Cloud Model Studio (DashScope, Qwen) API key (sk- + 32 hex digits) assigned to a DASHSCOPE_…KEY name",
            &["dashscope"],
            assigned(&key("dashscope"), "sk-[0-9a-f]{32}", END),
        ),
        named(
            "moonshot-api-key",
            "Moonshot AI (Kimi) API key (sk- + 48 alphanumerics) assigned to a MOONSHOT_…KEY or KIMI_…KEY name",
            &["moonshot", "kimi"],
            assigned(&key("(?:moonshot|kimi)"), "sk-[A-Za-z0-9]{48}", END),
        ),
        named(
            "stability-api-key",
            "Stability AI API key (sk- + 48 alphanumerics) assigned to a STABILITY_…KEY name",
            &["stability"],
            assigned(&key("stability"), "sk-[A-Za-z0-9]{48}", END),
        ),
        named(
            "zhipu-api-key",
            "Zhipu AI (GLM) API key (16–32 hex digits + . + 16 alphanumerics) assigned to a ZHIPUAI_…KEY name or GLM_API_KEY",
            &["zhipu", "glm_api_key"],
            assigned(&format!("{}|glm_api_key", key("zhipu")), r"[0-9a-f]{16,32}\.[A-Za-z0-9]{16}", END),
        ),
        named(
            "ai21-api-key",
            "AI21 Labs API key (32 alphanumerics) assigned to an AI21_…KEY name",
            &["ai21"],
            assigned(&key("ai21"), "[A-Za-z0-9]{32}", END),
        ),
        named(
            "deepinfra-api-key",
            "DeepInfra API token (32 alphanumerics) assigned to a DEEPINFRA_…KEY/TOKEN name",
            &["deepinfra"],
            assigned(&key("deepinfra"), "[A-Za-z0-9]{32}", END),
        ),
        named(
            "assemblyai-api-key",
            "AssemblyAI API key (32 hex digits) assigned to an ASSEMBLYAI_…KEY name",
            &["assemblyai", "assembly_ai"],
            assigned(&key("assembly_?ai"), "[0-9a-f]{32}", END),
        ),
        named(
            "deepgram-api-key",
            "Deepgram API key (40 hex digits) assigned to a DEEPGRAM_…KEY name",
            &["deepgram"],
            assigned(&key("deepgram"), "[0-9a-f]{40}", END),
        ),
        named(
            "clarifai-api-key",
            "Clarifai personal access token or API key (32 hex digits) assigned to a CLARIFAI_…PAT/KEY name",
            &["clarifai"],
            assigned(&format!("clarifai{NAME_GAP}(?:key|token|pat)"), "[0-9a-f]{32}", END),
        ),
        named(
            "wandb-api-key",
            "Weights & Biases API key (40 hex digits, local- + 40 for local servers) assigned to WANDB_API_KEY, after wandb login, or in a .netrc entry for api.wandb.ai",
            &["wandb"],
            assigned(&format!(r"{}|wandb[ \t]+login(?:[ \t]+--relogin)?|wandb\.ai[ \t\r\n]+login[ \t]+[^ \t\r\n]+[ \t\r\n]+password", key("wandb")), "(?:local-)?[0-9a-f]{40}", END),
        ),
        named(
            "comet-api-key",
            "Comet ML API key (25 alphanumerics) assigned to a COMET_…KEY name",
            &["comet"],
            assigned(&key("comet"), "[A-Za-z0-9]{25}", END),
        ),
        named(
            "weaviate-api-key",
            "Weaviate Cloud API key (32–48 alphanumerics) assigned to a WEAVIATE_…KEY name",
            &["weaviate"],
            assigned(&key("weaviate"), "[A-Za-z0-9]{32,48}", END),
        ),
        named(
            "exa-api-key",
            "Exa search API key (a UUID) assigned to EXA_API_KEY",
            &["exa_api_key"],
            assigned("exa_api_key", UUID, END),
        ),
        named(
            "serpapi-api-key",
            "SerpApi API key (64 hex digits) assigned to a SERPAPI_…KEY name",
            &["serpapi", "serp_api"],
            assigned(&key("serp_?api"), "[0-9a-f]{64}", END),
        ),
        named(
            "modal-token-secret",
            "Modal token secret (as- + 22 alphanumerics) assigned to MODAL_TOKEN_SECRET or --token-secret",
            &["modal_token_secret", "token-secret"],
            assigned("modal_token_secret|token-secret", "as-[A-Za-z0-9]{22}", END),
        ),
    ]
}

/// AI platforms and the tools agents call: tracing, search, crawling, sandboxes, orchestration.
fn platforms_and_tools() -> Vec<DetectorSpec> {
    vec![
        vendor(
            "langsmith-api-key",
            "LangSmith / LangChain personal or service API key (lsv2_pt_, lsv2_sk_ + 32 hex digits + _ + 10 hex digits)",
            &["lsv2_pt_", "lsv2_sk_"],
            "lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}",
            END,
        ),
        vendor(
            "langfuse-secret-key",
            "Langfuse secret key (sk-lf- + a UUID)",
            &["sk-lf-"],
            &format!("sk-lf-{UUID}"),
            END,
        ),
        vendor(
            "llamacloud-api-key",
            "LlamaIndex LlamaCloud API key (llx- + 48 alphanumerics)",
            &["llx-"],
            "llx-[A-Za-z0-9]{48}",
            END,
        ),
        vendor(
            "tavily-api-key",
            "Tavily API key (tvly- + optional dev-/prod- and key id + 32 alphanumerics)",
            &["tvly-"],
            "tvly-(?:(?:dev|prod)-)?(?:[A-Za-z0-9]{6}-)?[A-Za-z0-9]{32}",
            END,
        ),
        vendor("firecrawl-api-key", "Firecrawl API key (fc- + 32 hex digits)", &["fc-"], "fc-[0-9a-f]{32}", END),
        vendor("e2b-api-key", "E2B sandbox API key (e2b_ + 40 hex digits)", &["e2b_"], "e2b_[0-9a-f]{40}", END),
        vendor("prefect-api-key", "Prefect Cloud API key (pnu_ + 36 alphanumerics)", &["pnu_"], "pnu_[A-Za-z0-9]{36}", END),
        vendor(
            "neptune-api-token",
            "neptune.ai API token (base64 of a JSON object starting {\"api_address\": eyJhcGlfYWRkcmVzcyI6…)",
            &["eyJhcGlfYWRkcmVzcyI6"],
            "eyJhcGlfYWRkcmVzcyI6[A-Za-z0-9+/]{60,}={0,2}",
            END_B64,
        )
        .max_len(1024),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::{f, n, p, uuid, Case, ALNUM, B64, HEX, LETTERS, URL_SAFE};

    const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        vec![
            p("anthropic-api-key", "ANTHROPIC_API_KEY={}", format!("sk-ant-api03-{}AA", f("ant", URL_SAFE, 93))),
            p("anthropic-admin-key", "x-api-key: {}", format!("sk-ant-admin01-{}AA", f("ant-admin", URL_SAFE, 93))),
            p(
                "anthropic-oauth-token",
                r#"{"claudeAiOauth": {"accessToken": "{}""#,
                format!("sk-ant-oat01-{}AA", f("oat", URL_SAFE, 93)),
            ),
            p(
                "anthropic-oauth-token",
                r#""refreshToken": "{}","#,
                format!("sk-ant-ort01-{}AA", f("ort", URL_SAFE, 93)),
            ),
            p(
                "openai-api-key",
                "OPENAI_API_KEY={}",
                format!("sk-proj-{}T3BlbkFJ{}", f("oa-proj1", URL_SAFE, 74), f("oa-proj2", URL_SAFE, 74)),
            ),
            p(
                "openai-api-key",
                "openai.api_key = '{}'",
                format!("sk-{}T3BlbkFJ{}", f("oa-legacy1", ALNUM, 20), f("oa-legacy2", ALNUM, 20)),
            ),
            p("openai-api-key", "--api-key {}", format!("sk-svcacct-{}", f("oa-svc", URL_SAFE, 150))),
            p("openai-api-key", "admin key: {}", format!("sk-admin-{}", f("oa-admin", URL_SAFE, 120))),
            p("huggingface-token", "HF_TOKEN={}", format!("hf_{}", f("hf", LETTERS, 34))),
            p("groq-api-key", "GROQ_API_KEY={}", format!("gsk_{}", f("gsk", ALNUM, 52))),
            p("replicate-api-token", "export REPLICATE_API_TOKEN={}", format!("r8_{}", f("r8", ALNUM, 37))),
            p(
                "perplexity-api-key",
                r#"client = OpenAI(api_key="{}", base_url="https://api.perplexity.ai")"#,
                format!("pplx-{}", f("pplx", ALNUM, 48)),
            ),
            p("xai-api-key", "XAI_API_KEY={}", format!("xai-{}", f("xai", ALNUM, 80))),
            p("cohere-api-key", "COHERE_API_KEY=\"{}\"", f("cohere", ALNUM, 40)),
            p("huggingface-token", "HF_ORG_TOKEN={}", format!("api_org_{}", f("api-org", LETTERS, 34))),
            p("cohere-api-key", "export CO_API_KEY={}", f("co-api-key", ALNUM, 40)),
            p("openrouter-api-key", "OPENROUTER_API_KEY={}", format!("sk-or-v1-{}", f("openrouter", HEX, 64))),
            p("cerebras-api-key", "CEREBRAS_API_KEY={}", format!("csk-{}", f("cerebras", LOWER_ALNUM, 48))),
            p("nvidia-api-key", "NVIDIA_API_KEY={}", format!("nvapi-{}", f("nvapi", URL_SAFE, 64))),
            p("fireworks-api-key", "FIREWORKS_API_KEY={}", format!("fw_{}", f("fireworks", ALNUM, 33))),
            p("anyscale-api-key", "ANYSCALE_API_KEY={}", format!("esecret_{}", f("anyscale", ALNUM, 26))),
            p("voyage-api-key", "voyageai.Client(api_key=\"{}\")", format!("pa-{}", f("voyage", URL_SAFE, 43))),
            p(
                "jina-api-key",
                "Authorization: Bearer {}",
                format!("jina_{}{}", f("jina1", HEX, 32), f("jina2", URL_SAFE, 28)),
            ),
            p("together-api-key", "TOGETHER_API_KEY={}", format!("tgp_v1_{}", f("tgp", URL_SAFE, 43))),
            p("together-api-key", "together_api_key: {}", f("together-hex", HEX, 64)),
            p("elevenlabs-api-key", "ELEVENLABS_API_KEY={}", format!("sk_{}", f("eleven", HEX, 48))),
            p("elevenlabs-api-key", "elevenlabs_api_key = \"{}\"", f("eleven-old", HEX, 32)),
            p("elevenlabs-api-key", "-H \"xi-api-key: {}\"", f("xi", HEX, 32)),
            p("mistral-api-key", "client = Mistral(api_key=\"{}\")", f("mistral", ALNUM, 32)),
            p("deepseek-api-key", "DEEPSEEK_API_KEY={}", format!("sk-{}", f("deepseek", HEX, 32))),
            p("dashscope-api-key", "export DASHSCOPE_API_KEY=\"{}\"", format!("sk-{}", f("dashscope", HEX, 32))),
            p("moonshot-api-key", "MOONSHOT_API_KEY={}", format!("sk-{}", f("moonshot", ALNUM, 48))),
            p("moonshot-api-key", "kimi_api_key: {}", format!("sk-{}", f("kimi", ALNUM, 48))),
            p("stability-api-key", "STABILITY_API_KEY={}", format!("sk-{}", f("stability", ALNUM, 48))),
            p("zhipu-api-key", "ZHIPUAI_API_KEY={}", format!("{}.{}", f("zhipu1", HEX, 32), f("zhipu2", ALNUM, 16))),
            p("zhipu-api-key", "GLM_API_KEY={}", format!("{}.{}", f("glm1", HEX, 32), f("glm2", ALNUM, 16))),
            p("ai21-api-key", "AI21_API_KEY={}", f("ai21", ALNUM, 32)),
            p("deepinfra-api-key", "DEEPINFRA_API_TOKEN={}", f("deepinfra", ALNUM, 32)),
            p("assemblyai-api-key", "ASSEMBLYAI_API_KEY={}", f("assemblyai", HEX, 32)),
            p("assemblyai-api-key", "assembly_ai_key: {}", f("assembly-ai", HEX, 32)),
            p("deepgram-api-key", "DEEPGRAM_API_KEY={}", f("deepgram", HEX, 40)),
            p("clarifai-api-key", "CLARIFAI_PAT={}", f("clarifai", HEX, 32)),
            p("wandb-api-key", "WANDB_API_KEY={}", f("wandb", HEX, 40)),
            p("wandb-api-key", "$ wandb login {}", f("wandb-login", HEX, 40)),
            p("wandb-api-key", "machine api.wandb.ai\n  login user\n  password {}\n", f("wandb-netrc", HEX, 40)),
            p("comet-api-key", "COMET_API_KEY={}", f("comet", ALNUM, 25)),
            p("weaviate-api-key", "WEAVIATE_API_KEY={}", f("weaviate", ALNUM, 40)),
            p("exa-api-key", "EXA_API_KEY={}", uuid("exa")),
            p("serpapi-api-key", "SERPAPI_API_KEY={}", f("serpapi", HEX, 64)),
            p("serpapi-api-key", "serp_api_key: {}", f("serp-api", HEX, 64)),
            p("modal-token-secret", "MODAL_TOKEN_SECRET={}", format!("as-{}", f("modal", ALNUM, 22))),
            p(
                "modal-token-secret",
                "modal token set --token-id ak-x --token-secret {}",
                format!("as-{}", f("modal-cli", ALNUM, 22)),
            ),
            p(
                "langsmith-api-key",
                "LANGSMITH_API_KEY={}",
                format!("lsv2_pt_{}_{}", f("lsv2pt1", HEX, 32), f("lsv2pt2", HEX, 10)),
            ),
            p(
                "langsmith-api-key",
                "LANGCHAIN_API_KEY={}",
                format!("lsv2_sk_{}_{}", f("lsv2sk1", HEX, 32), f("lsv2sk2", HEX, 10)),
            ),
            p("langfuse-secret-key", "LANGFUSE_SECRET_KEY={}", format!("sk-lf-{}", uuid("langfuse"))),
            p("llamacloud-api-key", "LLAMA_CLOUD_API_KEY={}", format!("llx-{}", f("llx", ALNUM, 48))),
            p("tavily-api-key", "TAVILY_API_KEY={}", format!("tvly-{}", f("tvly", ALNUM, 32))),
            p(
                "tavily-api-key",
                "tavily: {}",
                format!("tvly-dev-{}-{}", f("tvly-id", ALNUM, 6), f("tvly-dev", ALNUM, 32)),
            ),
            p("firecrawl-api-key", "FIRECRAWL_API_KEY={}", format!("fc-{}", f("firecrawl", HEX, 32))),
            p("e2b-api-key", "E2B_API_KEY={}", format!("e2b_{}", f("e2b", HEX, 40))),
            p("prefect-api-key", "PREFECT_API_KEY={}", format!("pnu_{}", f("prefect", ALNUM, 36))),
            p(
                "neptune-api-token",
                "NEPTUNE_API_TOKEN=\"{}\"",
                format!("eyJhcGlfYWRkcmVzcyI6{}", f("neptune", B64, 160)),
            ),
        ]
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        vec![
            n("anthropic-api-key", "ANTHROPIC_API_KEY=sk-ant-api03-xxxx"),
            n("anthropic-api-key", format!("sk-ant-api03-{}AB", f("ant-ab", URL_SAFE, 93))),
            n("anthropic-admin-key", format!("sk-ant-admin01-{}", f("admin50", URL_SAFE, 50))),
            n("anthropic-oauth-token", "sk-ant-oat01-short"),
            n("openai-api-key", format!("sk-{} sk-proj-short task-{}", f("sk48", ALNUM, 48), f("task", ALNUM, 48))),
            n("huggingface-token", format!("hf_{} hf_{}", f("hf33", LETTERS, 33), f("hf-digits", "0123456789", 34))),
            n("groq-api-key", format!("gsk_{}", f("gsk51", ALNUM, 51))),
            n("replicate-api-token", format!("r8_{}", f("r830", ALNUM, 30))),
            n("perplexity-api-key", format!("pplx-{}", f("pplx40", ALNUM, 40))),
            n("xai-api-key", format!("xai-{}", f("xai60", ALNUM, 60))),
            n(
                "cohere-api-key",
                format!(
                    "cohere_model = \"{}\" COHERE_API_KEY={}",
                    f("cohere-model", ALNUM, 40),
                    f("cohere39", ALNUM, 39)
                ),
            ),
            n("openrouter-api-key", "sk-or-v1-short"),
            n("cerebras-api-key", "csk-short"),
            n("nvidia-api-key", "nvapi-short"),
            n("fireworks-api-key", "fw_loadFirmwareImageFromFlashMemoryBank(); fw_short"),
            n("anyscale-api-key", "esecret_short"),
            n("voyage-api-key", "pa-this-is-a-kebab-case-identifier-not-a-key and pa-short"),
            n("jina-api-key", format!("jina_{}", f("jina-n", HEX, 32))),
            n("together-api-key", "together_api_key_for_the_production_workloads_of_the_whole_team_x"),
            n("elevenlabs-api-key", format!("ELEVENLABS_VOICE_ID={}", f("voice", ALNUM, 20))),
            n("mistral-api-key", "MISTRAL_API_KEY=your-mistral-api-key"),
            n("deepseek-api-key", format!("DEEPSEEK_MODEL=deepseek-chat sk-{}", f("ds-bare", HEX, 32))),
            n("dashscope-api-key", "DASHSCOPE_API_KEY=sk-xxxxxxxx"),
            n("moonshot-api-key", "the moonshot key idea"),
            n("stability-api-key", "stability of the key: sk-short"),
            n("zhipu-api-key", "ZHIPUAI_API_KEY=your_key_here"),
            n("ai21-api-key", "AI21_API_KEY=short"),
            n("deepinfra-api-key", "DEEPINFRA_API_TOKEN=${DEEPINFRA_API_TOKEN}"),
            n("assemblyai-api-key", format!("ASSEMBLYAI_API_KEY={}", f("aai-n", HEX, 24))),
            n("deepgram-api-key", format!("DEEPGRAM_PROJECT_ID={}", uuid("dg-project"))),
            n("clarifai-api-key", "CLARIFAI_USER_ID=acme"),
            n("wandb-api-key", "wandb login --relogin\nWANDB_PROJECT=demo"),
            n("comet-api-key", "COMET_WORKSPACE=acme-team"),
            n("weaviate-api-key", "WEAVIATE_URL=https://x.weaviate.network"),
            n("exa-api-key", "EXA_API_KEY=not-a-uuid"),
            n("serpapi-api-key", "serpapi key: see docs"),
            n("modal-token-secret", "MODAL_TOKEN_ID=ak-abcdefghijklmnopqrstuv"),
            n("langsmith-api-key", "lsv2_pt_short"),
            n("langfuse-secret-key", format!("LANGFUSE_PUBLIC_KEY=pk-lf-{}", uuid("lf-pub"))),
            n("llamacloud-api-key", "llx-short"),
            n("tavily-api-key", "tvly-short"),
            n("firecrawl-api-key", "fc-short and gfc-x"),
            n("e2b-api-key", "e2b_short"),
            n("prefect-api-key", "pnu_short"),
            n("neptune-api-token", "eyJhcGlfYWRkcmVzcyI6short"),
        ]
    }
}
