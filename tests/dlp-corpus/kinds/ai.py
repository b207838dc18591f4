"""AI and machine-learning providers, and the tools agents call (search, crawling, sandboxes).

One Kind per documented format; `names` are the names people really assign the value to (env
vars, config keys, SDK arguments, CLI flags). Formats without a distinctive prefix (bare hex or
OpenAI-style `sk-…` keys of other vendors) are only recognisable next to such a name.
"""

from . import ALNUM, B64, HEX, LETTERS, LOWER_ALNUM, URL_SAFE, Kind, rand, snippet, token


def _uuid(r):
    h = rand(r, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _wandb_netrc(r):
    return snippet("machine api.wandb.ai\n  login user\n  password {key}\n", key=rand(r, HEX, 40))


KINDS = [
    # Prefixed model-provider keys.
    Kind("anthropic-api-key", "credential", lambda r: token("sk-ant-api03-", rand(r, URL_SAFE, 93) + "AA"), ("ANTHROPIC_API_KEY", "x-api-key"), "Anthropic docs: API keys"),
    Kind("anthropic-admin-key", "credential", lambda r: token("sk-ant-admin01-", rand(r, URL_SAFE, 93) + "AA"), ("ANTHROPIC_ADMIN_KEY",), "Anthropic docs: Admin API"),
    Kind("openai-api-key", "credential", lambda r: token("sk-proj-", rand(r, URL_SAFE, 74) + "T3BlbkFJ" + rand(r, URL_SAFE, 74)), ("OPENAI_API_KEY", "api_key"), "OpenAI docs: project keys"),
    Kind("openai-api-key", "credential", lambda r: token("sk-svcacct-", rand(r, URL_SAFE, 150)), ("OPENAI_API_KEY",), "OpenAI docs: service-account keys"),
    Kind("huggingface-token", "credential", lambda r: token("hf_", rand(r, LETTERS, 34)), ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"), "Hugging Face docs: user access tokens"),
    Kind("huggingface-token", "credential", lambda r: token("api_org_", rand(r, LETTERS, 34)), ("HF_ORG_TOKEN",), "Hugging Face docs: organization API tokens"),
    Kind("groq-api-key", "credential", lambda r: token("gsk_", rand(r, ALNUM, 52)), ("GROQ_API_KEY",), "Groq docs: API keys"),
    Kind("replicate-api-token", "credential", lambda r: token("r8_", rand(r, ALNUM, 37)), ("REPLICATE_API_TOKEN",), "Replicate docs: API tokens"),
    Kind("perplexity-api-key", "credential", lambda r: token("pplx-", rand(r, ALNUM, 48)), ("PERPLEXITY_API_KEY",), "Perplexity docs: API keys"),
    Kind("xai-api-key", "credential", lambda r: token("xai-", rand(r, ALNUM, 80)), ("XAI_API_KEY",), "xAI docs: API keys"),
    Kind("gcp-api-key", "credential", lambda r: token("AIza", rand(r, URL_SAFE, 35)), ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "Google AI Studio docs: Gemini API keys"),
    Kind("openrouter-api-key", "credential", lambda r: token("sk-or-v1-", rand(r, HEX, 64)), ("OPENROUTER_API_KEY",), "OpenRouter docs: API keys"),
    Kind("cerebras-api-key", "credential", lambda r: token("csk-", rand(r, LOWER_ALNUM, 48)), ("CEREBRAS_API_KEY",), "Cerebras docs: API keys"),
    Kind("nvidia-api-key", "credential", lambda r: token("nvapi-", rand(r, URL_SAFE, 64)), ("NVIDIA_API_KEY", "NGC_API_KEY"), "NVIDIA NGC docs: API keys"),
    Kind("fireworks-api-key", "credential", lambda r: token("fw_", rand(r, ALNUM, 33)), ("FIREWORKS_API_KEY",), "Fireworks AI docs: API keys"),
    Kind("anyscale-api-key", "credential", lambda r: token("esecret_", rand(r, ALNUM, 26)), ("ANYSCALE_API_KEY",), "Anyscale Endpoints docs"),
    Kind("voyage-api-key", "credential", lambda r: token("pa-", rand(r, URL_SAFE, 43)), ("VOYAGE_API_KEY",), "Voyage AI docs: API keys"),
    Kind("jina-api-key", "credential", lambda r: token("jina_", rand(r, HEX, 32) + rand(r, URL_SAFE, 28)), ("JINA_API_KEY",), "Jina AI docs: API keys"),
    Kind("together-api-key", "credential", lambda r: token("tgp_v1_", rand(r, URL_SAFE, 43)), ("TOGETHER_API_KEY",), "Together AI docs: API keys"),
    Kind("together-api-key", "credential", lambda r: token("", rand(r, HEX, 64)), ("TOGETHER_API_KEY", "together_api_key"), "Together AI docs: API keys (legacy)"),
    Kind("elevenlabs-api-key", "credential", lambda r: token("sk_", rand(r, HEX, 48)), ("ELEVENLABS_API_KEY", "xi-api-key"), "ElevenLabs docs: API keys"),
    Kind("elevenlabs-api-key", "credential", lambda r: token("", rand(r, HEX, 32)), ("ELEVENLABS_API_KEY", "xi-api-key"), "ElevenLabs docs: API keys (legacy)"),
    # Keys found next to their vendor's names.
    Kind("cohere-api-key", "credential", lambda r: token("", rand(r, ALNUM, 40)), ("COHERE_API_KEY", "CO_API_KEY"), "Cohere docs: API keys"),
    Kind("mistral-api-key", "credential", lambda r: token("", rand(r, ALNUM, 32)), ("MISTRAL_API_KEY", "mistral_api_key"), "Mistral AI docs: API keys"),
    Kind("deepseek-api-key", "credential", lambda r: token("", "sk-" + rand(r, HEX, 32)), ("DEEPSEEK_API_KEY",), "DeepSeek docs: API keys"),
    Kind("dashscope-api-key", "credential", lambda r: token("", "sk-" + rand(r, HEX, 32)), ("DASHSCOPE_API_KEY",), "Alibaba Cloud Model Studio docs: API keys"),
    Kind("moonshot-api-key", "credential", lambda r: token("", "sk-" + rand(r, ALNUM, 48)), ("MOONSHOT_API_KEY", "KIMI_API_KEY"), "Moonshot AI docs: API keys"),
    Kind("stability-api-key", "credential", lambda r: token("", "sk-" + rand(r, ALNUM, 48)), ("STABILITY_API_KEY",), "Stability AI docs: API keys"),
    Kind("zhipu-api-key", "credential", lambda r: token("", rand(r, HEX, 32) + "." + rand(r, ALNUM, 16)), ("ZHIPUAI_API_KEY", "GLM_API_KEY"), "Zhipu AI docs: API keys"),
    Kind("ai21-api-key", "credential", lambda r: token("", rand(r, ALNUM, 32)), ("AI21_API_KEY",), "AI21 Labs docs: API keys"),
    Kind("deepinfra-api-key", "credential", lambda r: token("", rand(r, ALNUM, 32)), ("DEEPINFRA_API_TOKEN", "DEEPINFRA_API_KEY"), "DeepInfra docs: API tokens"),
    Kind("assemblyai-api-key", "credential", lambda r: token("", rand(r, HEX, 32)), ("ASSEMBLYAI_API_KEY",), "AssemblyAI docs: API keys"),
    Kind("deepgram-api-key", "credential", lambda r: token("", rand(r, HEX, 40)), ("DEEPGRAM_API_KEY",), "Deepgram docs: API keys"),
    Kind("clarifai-api-key", "credential", lambda r: token("", rand(r, HEX, 32)), ("CLARIFAI_PAT", "CLARIFAI_API_KEY"), "Clarifai docs: personal access tokens"),
    Kind("wandb-api-key", "credential", lambda r: token("", rand(r, HEX, 40)), ("WANDB_API_KEY", "wandb_api_key"), "Weights & Biases docs: API keys"),
    Kind("wandb-api-key", "credential", _wandb_netrc, (), "Weights & Biases docs: wandb login writes ~/.netrc"),
    Kind("comet-api-key", "credential", lambda r: token("", rand(r, ALNUM, 25)), ("COMET_API_KEY",), "Comet docs: API keys"),
    Kind("weaviate-api-key", "credential", lambda r: token("", rand(r, ALNUM, 40)), ("WEAVIATE_API_KEY",), "Weaviate Cloud docs: API keys"),
    Kind("exa-api-key", "credential", lambda r: token("", _uuid(r)), ("EXA_API_KEY",), "Exa docs: API keys"),
    Kind("serpapi-api-key", "credential", lambda r: token("", rand(r, HEX, 64)), ("SERPAPI_API_KEY", "SERPAPI_KEY"), "SerpApi docs: API keys"),
    Kind("modal-token-secret", "credential", lambda r: token("", "as-" + rand(r, ALNUM, 22)), ("MODAL_TOKEN_SECRET", "--token-secret"), "Modal docs: tokens"),
    # Platforms and agent tools.
    Kind("langsmith-api-key", "credential", lambda r: token("lsv2_pt_", rand(r, HEX, 32) + "_" + rand(r, HEX, 10)), ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"), "LangSmith docs: API keys"),
    Kind("langsmith-api-key", "credential", lambda r: token("lsv2_sk_", rand(r, HEX, 32) + "_" + rand(r, HEX, 10)), ("LANGSMITH_API_KEY",), "LangSmith docs: service keys"),
    Kind("langfuse-secret-key", "credential", lambda r: token("sk-lf-", _uuid(r)), ("LANGFUSE_SECRET_KEY",), "Langfuse docs: API keys"),
    Kind("llamacloud-api-key", "credential", lambda r: token("llx-", rand(r, ALNUM, 48)), ("LLAMA_CLOUD_API_KEY",), "LlamaCloud docs: API keys"),
    Kind("tavily-api-key", "credential", lambda r: token("tvly-", rand(r, ALNUM, 32)), ("TAVILY_API_KEY",), "Tavily docs: API keys"),
    Kind("tavily-api-key", "credential", lambda r: token("tvly-dev-", rand(r, ALNUM, 6) + "-" + rand(r, ALNUM, 32)), ("TAVILY_API_KEY",), "Tavily docs: API keys (development)"),
    Kind("firecrawl-api-key", "credential", lambda r: token("fc-", rand(r, HEX, 32)), ("FIRECRAWL_API_KEY",), "Firecrawl docs: API keys"),
    Kind("e2b-api-key", "credential", lambda r: token("e2b_", rand(r, HEX, 40)), ("E2B_API_KEY",), "E2B docs: API keys"),
    Kind("prefect-api-key", "credential", lambda r: token("pnu_", rand(r, ALNUM, 36)), ("PREFECT_API_KEY",), "Prefect Cloud docs: API keys"),
    Kind("neptune-api-token", "credential", lambda r: token("eyJhcGlfYWRkcmVzcyI6", rand(r, B64, 160)), ("NEPTUNE_API_TOKEN",), "neptune.ai docs: API tokens"),
]
