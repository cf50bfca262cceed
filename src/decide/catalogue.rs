//! The inference engines, as data: one row each. Everything the project knows about an engine
//! is in its row, with the upstream file each fact was read from beside it; the detector
//! (`detect.rs`), the judge and the docs' engine table (`tests/tables.rs`) interpret the rows.
//! Adding an engine is adding a row and its tests ([docs/adding-an-engine.md]).
//! Rows are tried in order, so a refinement (vLLM prefill/decode) comes before its base engine
//! and a specific image name before a broader one.
//!
//! Above the rows: the words every engine shares (look-alike words, setup programs, wrappers,
//! the collector's scrape path). A row adds words of its own to them.
//!
//! [docs/adding-an-engine.md]: https://github.com/inference-webhook/inference-webhook/blob/main/docs/adding-an-engine.md

use super::argv::Cmd;

/// How an image names an engine.
#[derive(Debug)]
pub enum ImageMatch {
    /// The last path component equals this (`vllm-openai`, kept by private mirrors).
    Name(&'static str),
    /// A word of the last path component (split on `-`, `_`, `.`) is this, or this followed by a
    /// version (vendor builds: `vllm-tpu`, `tgi-gaudi`, `vllm0.9`) — never a part of a word.
    NameWord(&'static str),
    /// The last path component contains this (names with a `.` in them: `llama.cpp`).
    NameContains(&'static str),
    /// The repository path contains this (`ai-dynamo/`).
    PathContains(&'static str),
}

/// Words of an image or container name that make it something else than the engine it names:
/// a mock, a simulator, a benchmark or an SDK image (`aibrix/vllm-mock`, `vllm-sim`), or a
/// product in front of or beside the engine: a proxy, gateway, router, exporter, operator or
/// sidecar (`vllm-latency-proxy`, `tgi-exporter`). In an image name they apply to word and
/// substring matches only, an exact [`ImageMatch::Name`] being the engine; in a container name
/// they apply to every detection that rests on the image alone, unless the image's name has the
/// word too (`sglang-router` in a container named `router`).
pub const LOOKALIKE_WORDS: &[&str] = &[
    "mock",
    "mocks",
    "mocker",
    "mocked",
    "sim",
    "simulator",
    "simulation",
    "simulated",
    "emulator",
    "emulated",
    "fake",
    "fakes",
    "stub",
    "stubs",
    "dummy",
    "bench",
    "benchmark",
    "benchmarks",
    "perf",
    "loadgen",
    "latency",
    "sdk",
    "client",
    "cli",
    "exporter",
    "metrics",
    "monitor",
    "monitoring",
    "dashboard",
    "operator",
    "controller",
    "webhook",
    "injector",
    "sidecar",
    "proxy",
    "gateway",
    "router",
    "balancer",
    "loadbalancer",
    "lb",
    "epp",
    "scheduler",
    "autoscaler",
    "syncer",
    "tokenizer",
    "test",
    "tests",
    "e2e",
    "ui",
    "webui",
    "docs",
];

/// Programs a container script runs to prepare or report, never to serve: around an opaque
/// launcher (`echo ...; cd /server; /tgi-entrypoint.sh`) they leave it the only candidate.
pub const SETUP_PROGRAMS: &[&str] = &[
    ":",
    "[",
    "apk",
    "apt",
    "apt-get",
    "cat",
    "cd",
    "chmod",
    "chown",
    "cmake",
    "cp",
    "curl",
    "date",
    "df",
    "dnf",
    "echo",
    "free",
    "git",
    "hostname",
    "huggingface-cli",
    "ln",
    "ls",
    "make",
    "mkdir",
    "mv",
    "nvidia-smi",
    "pip",
    "pip3",
    "printf",
    "pwd",
    "rm",
    "set",
    "sleep",
    "source",
    "tail",
    "tee",
    "test",
    "touch",
    "trap",
    "true",
    "ulimit",
    "umask",
    "unset",
    "uv",
    "wget",
    "which",
    "yum",
];

/// A program that runs the command after it (`timeout 60 cmd`, `uv run cmd`).
#[derive(Debug)]
pub struct Wrapper {
    pub name: &'static str,
    /// The wrapper's own first word, without which it runs nothing (`uv run`; `uv pip` is uv).
    pub subcommand: Option<&'static str>,
    /// Options that take a value.
    pub valued: &'static [&'static str],
    /// Positional arguments of its own before the command (`timeout 60 cmd`: 1).
    pub positionals: usize,
}

const fn wrapper(
    name: &'static str,
    valued: &'static [&'static str],
    positionals: usize,
) -> Wrapper {
    Wrapper {
        name,
        subcommand: None,
        valued,
        positionals,
    }
}

/// Programs that run the command after them, as coreutils, util-linux, tini, dumb-init and uv
/// document their options.
pub const WRAPPERS: &[Wrapper] = &[
    wrapper("exec", &["-a"], 0),
    wrapper("nohup", &[], 0),
    wrapper("time", &[], 0),
    wrapper("command", &[], 0),
    wrapper("builtin", &[], 0),
    wrapper(
        "env",
        &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
        0,
    ),
    wrapper("timeout", &["-s", "--signal", "-k", "--kill-after"], 1),
    wrapper("tini", &["-s", "-p", "-e"], 0),
    wrapper("dumb-init", &["-r", "--rewrite"], 0),
    wrapper("setsid", &[], 0),
    wrapper("stdbuf", &["-i", "-o", "-e"], 0),
    wrapper("nice", &["-n", "--adjustment"], 0),
    Wrapper {
        name: "uv",
        subcommand: Some("run"),
        valued: &[
            "--with",
            "--python",
            "-p",
            "--project",
            "--directory",
            "--env-file",
            "--extra",
            "--group",
            "--package",
            "--index",
            "--with-requirements",
            "--with-editable",
        ],
        positionals: 0,
    },
];

/// The path the collector scrapes on the named port unless told otherwise (ENGINES.md): an
/// engine whose `metrics_path` differs is reported (`metrics-path-differs`).
pub const COLLECTOR_PATH: &str = "/metrics";

/// Where a row's facts were read: the engine's repository and files (also cited beside each
/// fact in the row's comment), for the docs' engine table.
#[derive(Debug)]
pub struct Source {
    pub repo: &'static str,
    pub files: &'static [&'static str],
}

/// The engine's metrics in the dashboards (`deploy/dashboards/inference-rules.yaml`): the prefix
/// of its metric names, and every name the recording rules read (`tests/tables.rs` compares).
#[derive(Debug)]
pub struct Dashboard {
    pub prefix: &'static str,
    pub metrics: &'static [&'static str],
}

/// The words a parser reads as one boolean value.
#[derive(Clone, Copy, Debug)]
pub struct BoolWords {
    pub words: &'static [&'static str],
    /// `OFF` is `off` (Triton's `ParseOption<bool>`); llama.cpp compares exactly.
    pub any_case: bool,
}

impl BoolWords {
    pub fn holds(&self, value: &str) -> bool {
        self.words.iter().any(|w| {
            if self.any_case {
                value.eq_ignore_ascii_case(w)
            } else {
                value == *w
            }
        })
    }
}

/// An environment variable that switches metrics on, and the values that mean true.
#[derive(Clone, Copy, Debug)]
pub struct EnvSwitch {
    pub var: &'static str,
    pub truth: BoolWords,
}

/// How the engine's parser accepts flag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagSpelling {
    /// Only as written in the catalogue.
    Exact,
    /// `--a_b` is `--a-b` (vLLM's `FlexibleArgumentParser` rewrites `_` to `-` in flag names).
    DashOrUnderscore,
}

/// Whether the engine's parser takes a value in the flag's own word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagValues {
    /// `--flag value` and `--flag=value` (argparse, clap, click, getopt_long).
    SpaceOrEquals,
    /// `--flag value` only: `--flag=value` is an unknown argument and the server exits
    /// (llama.cpp's `common_params_parse_ex` looks the whole word up).
    SpaceOnly,
}

/// A refinement of a base engine that a flag's value decides (vLLM prefill/decode).
#[derive(Debug)]
pub struct Refinement {
    pub flag: &'static str,
    /// Whether the flag's value means the refinement.
    pub means: fn(&str) -> bool,
    /// What the refinement is, for evidence.
    pub what: &'static str,
}

impl Refinement {
    /// Whether a command sets the flag to a value that means the refinement.
    pub fn holds(&self, cmd: &Cmd) -> bool {
        cmd.flag(self.flag).is_some_and(self.means)
    }
}

/// How a simple command names an engine.
#[derive(Debug)]
pub enum CommandMatch {
    /// A program, optionally with its first argument (`vllm serve`).
    Program(&'static str, Option<&'static str>),
    /// A program whose name contains this (`llama-server`, `llamacpp-leader`).
    ProgramContains(&'static str),
    /// `python -m MODULE`.
    Module(&'static str),
    /// A script by file name (`launch_triton_server.py`), or by the end of its path
    /// (`openai_frontend/main.py`) when the catalogue entry has a `/`.
    Script(&'static str),
    /// Any command with an argument starting with this (`--triton_model_repo_dir=`).
    ArgPrefix(&'static str),
}

/// Where the engine serves Prometheus metrics.
#[derive(Debug)]
pub enum MetricsListener {
    /// On the serving port (`port_flags`, else `default_port`).
    Serving,
    /// On its own listener: a flag, else a default when the engine has one; bound to the
    /// address of `host_flag`, else `default_host` (`None`: all interfaces).
    Separate {
        flags: &'static [&'static str],
        default: Option<u16>,
        host_flag: Option<&'static str>,
        default_host: Option<&'static str>,
        /// Program or image names (the last path component) of later builds whose default is
        /// all interfaces: the engine changed its default and renamed itself.
        all_interfaces_by_default: &'static [&'static str],
    },
    /// On a port named by an environment variable; no metrics when it is unset.
    EnvVar(&'static str),
}

/// Whether metrics need switching on.
#[derive(Debug)]
pub enum MetricsSwitch {
    On,
    /// Served only with `flag`, or with the environment variable `env` set true (llama.cpp reads
    /// each flag from an `LLAMA_ARG_*` variable too).
    RequiresFlag {
        flag: &'static str,
        env: Option<EnvSwitch>,
    },
    /// Recorded unless this flag is given.
    DisabledBy(&'static str),
    /// Recorded unless this flag's value is one of `off`, as `--flag=false` or `--flag false`.
    OffBy {
        flag: &'static str,
        off: BoolWords,
    },
    /// By the version the image tag names (`major.minor.patch`): no metrics at all before
    /// `added` (no flag switches them on), then only with `enable`, and from `on_by_default`
    /// unless `disable` (`enable` is then gone).
    ByVersion {
        added: (u32, u32, u32),
        enable: &'static str,
        on_by_default: (u32, u32, u32),
        disable: &'static str,
    },
}

/// A sign that a container runs only a worker process of a multi-node engine.
#[derive(Debug)]
pub enum WorkerMatch {
    /// A command whose first positional argument is `worker` (`multi-node-serving.sh worker`).
    WorkerArg,
    /// A program with a first argument (`ray start`).
    Program(&'static str, Option<&'static str>),
    /// The image's last path component contains this (`llamacpp-worker`).
    ImageNameContains(&'static str),
    /// A rank flag with a value above 0 (`--node-rank 1`).
    RankFlag(&'static str),
}

/// One engine.
#[derive(Debug)]
pub struct EngineSpec {
    pub id: &'static str,
    pub name: &'static str,
    /// The backend label value.
    pub backend: &'static str,
    /// Engines of one family never contradict each other's backend label
    /// (`vllm` and `vllm-pd`; `sglang` and its router).
    pub family: &'static str,
    pub images: &'static [ImageMatch],
    pub commands: &'static [CommandMatch],
    /// The row applies only when the serving command's flag says so (vLLM PD).
    pub requires: Option<Refinement>,
    pub flag_spelling: FlagSpelling,
    pub flag_values: FlagValues,
    /// Flags only this engine's entrypoint takes: args-only containers of its image whose args
    /// carry one are its entrypoint (`entrypoint` evidence), not a guess from the image name.
    pub signature_flags: &'static [&'static str],
    /// The entrypoint's first argument is the model (`vllm serve MODEL`).
    pub positional_model: bool,
    /// First arguments that make the engine's program a client, not a server (`vllm bench`).
    pub non_server_subcommands: &'static [&'static str],
    pub port_flags: &'static [&'static str],
    /// Environment variables the engine (or its image's entrypoint) reads its port from when no
    /// flag is given, the first set one winning.
    pub port_env: &'static [&'static str],
    pub default_port: Option<u16>,
    pub metrics: MetricsListener,
    pub metrics_path: &'static str,
    pub switch: MetricsSwitch,
    pub workers: &'static [WorkerMatch],
    /// Ways of running the engine that serve no `/metrics` at all (a gRPC server, a demo HTTP
    /// server): labeled, but no port is named and no metrics rule applies.
    pub no_metrics: &'static [CommandMatch],
    /// Programs that run the engine's command after them, besides [`WRAPPERS`].
    pub wrappers: &'static [Wrapper],
    /// Programs that only prepare its containers, besides [`SETUP_PROGRAMS`].
    pub setup_programs: &'static [&'static str],
    /// Words of an image or container name that make it something else than this engine,
    /// besides [`LOOKALIKE_WORDS`].
    pub lookalike_words: &'static [&'static str],
    /// Labeled by the default policy (`supportedBackends`): the backends the ACK dashboard
    /// documents. Listed base engines first, then refinements ([`default_supported_backends`]).
    pub supported_by_default: bool,
    pub dashboard: Dashboard,
    pub source: Source,
    /// A remark for the docs' engine table, where a fact needs one (TGI's two defaults).
    pub note: &'static str,
}

/// vLLM's KV-transfer settings that mean one side of a prefill/decode pair: a producer or
/// consumer role, or `kv_both` with a connector that moves KV between servers. `kv_both` with an
/// offloading connector (`OffloadingConnector`, LMCache on one server) is cache offloading, and
/// a value that cannot be read (`$(KV_TRANSFER_CONFIG)`) shows neither.
/// Roles: `vllm/config/kv_transfer.py` (`KVRole`); connectors:
/// `vllm/distributed/kv_transfer/kv_connector/factory.py`.
fn kv_transfer_is_disaggregation(value: &str) -> bool {
    const PD_CONNECTORS: &[&str] = &[
        "NixlConnector",
        "P2pNcclConnector",
        "MooncakeConnector",
        "MooncakeConnectorV1",
        "PyNcclConnector",
        "MooncakeStoreConnector",
        "MoRIIOConnector",
    ];
    let parsed: Option<serde_json::Value> = serde_json::from_str(value).ok();
    let field = |key: &str| -> Option<String> {
        match &parsed {
            Some(v) => v.get(key).and_then(|f| f.as_str()).map(str::to_string),
            // Shell-mangled JSON (`{kv_connector:NixlConnector,...}`): find the key's value.
            None => {
                let at = value.find(key)? + key.len();
                let rest = value[at..].trim_start_matches(['"', '\'', ' ', ':', '=']);
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                Some(rest[..end].to_string())
            }
        }
    };
    match field("kv_role").as_deref() {
        Some("kv_producer" | "kv_consumer") => true,
        Some("kv_both") => {
            field("kv_connector").is_some_and(|c| PD_CONNECTORS.contains(&c.as_str()))
        }
        _ => false,
    }
}

// vLLM: `vllm/entrypoints/openai/cli_args.py` (`--host`, `--port` default 8000),
// `vllm/engine/arg_utils.py` (`--disable-log-stats`, `--kv-transfer-config`, model flags),
// `vllm/utils/argparse_utils.py` (`FlexibleArgumentParser`: `--a_b` is `--a-b`, `--f=v`),
// `vllm/entrypoints/cli/main.py` (subcommands `serve`, `bench`, `chat`, `complete`, `run-batch`),
// `docker/Dockerfile` (`vllm/vllm-openai` ENTRYPOINT `vllm serve`). Metrics: `/metrics` on the
// serving port (`vllm/entrypoints/openai/api_server.py`, `mount_metrics`).
const VLLM: EngineSpec = EngineSpec {
    id: "vllm",
    name: "vLLM",
    backend: "vllm",
    family: "vllm",
    images: &[
        ImageMatch::Name("vllm-openai"),
        ImageMatch::NameWord("vllm"),
    ],
    commands: &[
        CommandMatch::Program("vllm", Some("serve")),
        CommandMatch::Module("vllm.entrypoints.openai.api_server"),
        CommandMatch::Module("vllm.entrypoints.api_server"),
        CommandMatch::Module("vllm.entrypoints.grpc_server"),
    ],
    requires: None,
    flag_spelling: FlagSpelling::DashOrUnderscore,
    flag_values: FlagValues::SpaceOrEquals,
    signature_flags: &[
        "--model",
        "--served-model-name",
        "--tensor-parallel-size",
        "--max-model-len",
        "--gpu-memory-utilization",
        "--kv-transfer-config",
        "--max-num-seqs",
    ],
    positional_model: true,
    non_server_subcommands: &["bench", "chat", "complete", "collect-env", "run-batch"],
    port_flags: &["--port"],
    port_env: &[],
    default_port: Some(8000),
    metrics: MetricsListener::Serving,
    metrics_path: "/metrics",
    // `vllm/entrypoints/grpc_server.py`: a gRPC server on `--port` (default 50051), no HTTP app;
    // `vllm/entrypoints/api_server.py`: the demo server, `/health` and `/generate` only.
    no_metrics: &[
        CommandMatch::Module("vllm.entrypoints.grpc_server"),
        CommandMatch::Module("vllm.entrypoints.api_server"),
    ],
    switch: MetricsSwitch::DisabledBy("--disable-log-stats"),
    workers: &[
        WorkerMatch::WorkerArg,
        WorkerMatch::Program("ray", Some("start")),
    ],
    wrappers: &[],
    setup_programs: &[],
    lookalike_words: &[],
    supported_by_default: true,
    dashboard: Dashboard {
        prefix: "vllm:",
        metrics: &[
            "vllm:e2e_request_latency_seconds",
            "vllm:generation_tokens_total",
            "vllm:gpu_cache_usage_perc",
            "vllm:gpu_prefix_cache_hit_rate",
            "vllm:gpu_prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_queries_total",
            "vllm:inter_token_latency_seconds",
            "vllm:kv_cache_usage_perc",
            "vllm:num_preemptions_total",
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total",
            "vllm:prompt_tokens_total",
            "vllm:request_success_total",
            "vllm:time_per_output_token_seconds",
            "vllm:time_to_first_token_seconds",
            "http_requests_total",
        ],
    },
    source: Source {
        repo: "vllm-project/vllm",
        files: &[
            "vllm/entrypoints/openai/cli_args.py",
            "vllm/engine/arg_utils.py",
            "vllm/utils/argparse_utils.py",
            "vllm/entrypoints/cli/main.py",
            "docker/Dockerfile",
            "vllm/entrypoints/openai/api_server.py",
            "vllm/entrypoints/grpc_server.py",
            "vllm/entrypoints/api_server.py",
            "vllm/v1/metrics/loggers.py",
        ],
    },
    note: "",
};

pub const CATALOGUE: &[EngineSpec] = &[
    // vLLM with a KV-transfer config that pairs servers is one side of a prefill/decode pair.
    EngineSpec {
        id: "vllm-pd",
        name: "vLLM prefill/decode",
        backend: "vllm-pd",
        requires: Some(Refinement {
            flag: "--kv-transfer-config",
            means: kv_transfer_is_disaggregation,
            what: "a prefill/decode KV transfer",
        }),
        ..VLLM
    },
    VLLM,
    // Dynamo frontend: `components/src/dynamo/frontend/main.py` (`--http-port`, default 8000,
    // env `DYN_HTTP_PORT`); `/metrics` on that port (`lib/llm/src/http/service/metrics.rs`).
    EngineSpec {
        id: "dynamo-frontend",
        name: "Dynamo frontend",
        backend: "dynamo",
        family: "dynamo",
        images: &[],
        commands: &[CommandMatch::Module("dynamo.frontend")],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--http-port"],
        port_env: &["DYN_HTTP_PORT"],
        default_port: Some(8000),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::On,
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "dynamo_frontend_",
            metrics: &[
                "dynamo_frontend_inflight_requests",
                "dynamo_frontend_input_sequence_tokens",
                "dynamo_frontend_inter_token_latency_seconds",
                "dynamo_frontend_output_sequence_tokens",
                "dynamo_frontend_queued_requests",
                "dynamo_frontend_request_duration_seconds",
                "dynamo_frontend_requests_total",
                "dynamo_frontend_time_to_first_token_seconds",
            ],
        },
        source: Source {
            repo: "ai-dynamo/dynamo",
            files: &[
                "components/src/dynamo/frontend/main.py",
                "lib/llm/src/http/service/metrics.rs",
            ],
        },
        note: "",
    },
    // Dynamo workers: `components/src/dynamo/{vllm,sglang,trtllm}/main.py`; their system server
    // (`/metrics`) listens on `DYN_SYSTEM_PORT` and is off without it (`lib/runtime/src/config.rs`).
    EngineSpec {
        id: "dynamo",
        name: "Dynamo worker",
        backend: "dynamo",
        family: "dynamo",
        images: &[ImageMatch::PathContains("ai-dynamo/")],
        commands: &[
            CommandMatch::Module("dynamo.vllm"),
            CommandMatch::Module("dynamo.sglang"),
            CommandMatch::Module("dynamo.trtllm"),
        ],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &[],
        port_env: &[],
        default_port: None,
        metrics: MetricsListener::EnvVar("DYN_SYSTEM_PORT"),
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::On,
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "",
            metrics: &[],
        },
        source: Source {
            repo: "ai-dynamo/dynamo",
            files: &[
                "components/src/dynamo/{vllm,sglang,trtllm}/main.py",
                "lib/runtime/src/config.rs",
            ],
        },
        note: "",
    },
    // SGLang router / model gateway: `sgl-router/py_src/sglang_router/router_args.py` and the
    // gateway binary's `sgl-router/src/main.rs` (`--port` 30000; `--prometheus-port` 29000 bound
    // to `--prometheus-host`, default 127.0.0.1: not reachable from outside the pod). sglang
    // #11219 (October 2025) made the default 0.0.0.0, and the router became the SGLang Model
    // Gateway (`sgl-model-gateway/src/main.rs`, `bindings/python/sglang_router/router_args.py`):
    // builds under its new names bind all interfaces.
    EngineSpec {
        id: "sglang-router",
        name: "SGLang router",
        backend: "sglang-router",
        family: "sglang",
        images: &[
            ImageMatch::Name("sglang-router"),
            ImageMatch::Name("sgl-model-gateway"),
            ImageMatch::Name("smg-gateway"),
            ImageMatch::Name("smg"),
        ],
        commands: &[
            CommandMatch::Module("sglang_router.launch_router"),
            CommandMatch::Program("sgl-model-gateway", None),
            CommandMatch::Program("smg", None),
        ],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[
            "--worker-urls",
            "--pd-disaggregation",
            "--service-discovery",
            "--prefill-selector",
            "--prometheus-port",
        ],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: &[],
        default_port: Some(30000),
        metrics: MetricsListener::Separate {
            flags: &["--prometheus-port"],
            default: Some(29000),
            host_flag: Some("--prometheus-host"),
            default_host: Some("127.0.0.1"),
            all_interfaces_by_default: &["sgl-model-gateway", "smg", "smg-gateway"],
        },
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::On,
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "",
            metrics: &[],
        },
        source: Source {
            repo: "sgl-project/sglang",
            files: &[
                "sgl-router/py_src/sglang_router/router_args.py",
                "sgl-router/src/main.rs",
                "sgl-model-gateway/src/main.rs",
                "bindings/python/sglang_router/router_args.py",
            ],
        },
        note: "sglang #11219 made 0.0.0.0 the default when the router became the model gateway",
    },
    // SGLang: `python/sglang/srt/server_args.py` (`--port` 30000, `--enable-metrics`,
    // `--node-rank`; plain argparse, so spellings are exact); `/metrics` on the serving port.
    EngineSpec {
        id: "sglang",
        name: "SGLang",
        backend: "sglang",
        family: "sglang",
        images: &[ImageMatch::Name("sglang"), ImageMatch::NameWord("sglang")],
        commands: &[
            CommandMatch::Module("sglang.launch_server"),
            CommandMatch::Program("sglang", Some("serve")),
        ],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &["--model-path", "--tp-size", "--disaggregation-mode"],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: &[],
        default_port: Some(30000),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        // `--grpc-mode`: the scheduler behind a gRPC server instead of the HTTP app that mounts
        // `/metrics` (`python/sglang/srt/entrypoints/grpc_server.py`).
        no_metrics: &[CommandMatch::ArgPrefix("--grpc-mode")],
        switch: MetricsSwitch::RequiresFlag {
            flag: "--enable-metrics",
            env: None,
        },
        workers: &[WorkerMatch::RankFlag("--node-rank")],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: true,
        dashboard: Dashboard {
            prefix: "sglang:",
            metrics: &[
                "sglang:cache_hit_rate",
                "sglang:e2e_request_latency_seconds",
                "sglang:generation_tokens_total",
                "sglang:inter_token_latency_seconds",
                "sglang:num_aborted_requests_total",
                "sglang:num_queue_reqs",
                "sglang:num_requests_total",
                "sglang:num_retracted_requests_total",
                "sglang:num_running_reqs",
                "sglang:prompt_tokens_total",
                "sglang:time_per_output_token_seconds",
                "sglang:time_to_first_token_seconds",
                "sglang:token_usage",
            ],
        },
        source: Source {
            repo: "sgl-project/sglang",
            files: &[
                "python/sglang/srt/server_args.py",
                "python/sglang/srt/entrypoints/grpc_server.py",
                "python/sglang/srt/metrics/collector.py",
            ],
        },
        note: "exact spellings: plain argparse",
    },
    // TGI: `launcher/src/main.rs` (clap: `--port`/`-p` (`#[clap(default_value = "3000", long,
    // short, env)]`), env `PORT`, default 3000; `--model-id`; clap takes `--port 80`,
    // `--port=80`, `-p 80`, `-p80`, the last one winning);
    // the official `Dockerfile` sets `PORT=80`; Google's TGI images map `AIP_HTTP_PORT` onto
    // `PORT` in their entrypoint (`huggingface/Google-Cloud-Containers`, `entrypoint.sh`).
    EngineSpec {
        id: "tgi",
        name: "Text Generation Inference",
        backend: "tgi",
        family: "tgi",
        images: &[
            ImageMatch::NameContains("text-generation-inference"),
            ImageMatch::NameWord("tgi"),
        ],
        commands: &[CommandMatch::Program("text-generation-launcher", None)],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &["--model-id", "--max-total-tokens", "--max-input-length"],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--port", "-p"],
        port_env: &["AIP_HTTP_PORT", "PORT"],
        // The official image sets PORT=80 for its launcher.
        default_port: Some(80),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::On,
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "tgi_",
            metrics: &[
                "tgi_batch_current_size",
                "tgi_queue_size",
                "tgi_request_duration",
                "tgi_request_failure",
                "tgi_request_generated_tokens",
                "tgi_request_input_length",
                "tgi_request_mean_time_per_token_duration",
                "tgi_request_success",
            ],
        },
        source: Source {
            repo: "huggingface/text-generation-inference",
            files: &["launcher/src/main.rs", "Dockerfile", "router/src/server.rs"],
        },
        note: "80 is the official image's `PORT`, the launcher's own default is 3000; clap takes `-p8080` too and the last one given wins; Google's images map `AIP_HTTP_PORT` onto `PORT` (huggingface/Google-Cloud-Containers `entrypoint.sh`)",
    },
    // Triton's OpenAI-compatible frontend: `python/openai/openai_frontend/main.py` in
    // triton-inference-server/server (`--openai-port` default 9000, which also serves
    // `/metrics`; `--kserve-http-port` 8000 only with `--enable-kserve-frontends`).
    EngineSpec {
        id: "triton-openai",
        name: "Triton OpenAI frontend",
        backend: "triton",
        family: "triton",
        images: &[],
        commands: &[CommandMatch::Script("openai_frontend/main.py")],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--openai-port"],
        port_env: &[],
        default_port: Some(9000),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::On,
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "",
            metrics: &[],
        },
        source: Source {
            repo: "triton-inference-server/server",
            files: &["python/openai/openai_frontend/main.py"],
        },
        note: "`--kserve-http-port` 8000 only with `--enable-kserve-frontends`",
    },
    // Triton: `src/command_line_parser.cc` (`--http-port` 8000, `--metrics-port` 8002 on
    // `--metrics-address`, default all interfaces; `--allow-metrics` default true, a bool read by
    // `ParseOption<bool>`: `true`/`on`/`1`, `false`/`off`/`0` in any case; `getopt_long` takes
    // `--flag=v` and `--flag v`).
    EngineSpec {
        id: "triton",
        name: "Triton Inference Server",
        backend: "triton",
        family: "triton",
        images: &[ImageMatch::NameWord("tritonserver")],
        commands: &[
            CommandMatch::Program("tritonserver", None),
            CommandMatch::Script("launch_triton_server.py"),
            CommandMatch::ArgPrefix("--triton_model_repo"),
        ],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &["--model-repository", "--model-store"],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--http-port"],
        port_env: &[],
        default_port: Some(8000),
        metrics: MetricsListener::Separate {
            flags: &["--metrics-port"],
            default: Some(8002),
            host_flag: Some("--metrics-address"),
            default_host: None,
            all_interfaces_by_default: &[],
        },
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::OffBy {
            flag: "--allow-metrics",
            off: BoolWords {
                words: &["false", "off", "0"],
                any_case: true,
            },
        },
        workers: &[WorkerMatch::WorkerArg],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "",
            metrics: &[],
        },
        source: Source {
            repo: "triton-inference-server/server",
            files: &["src/command_line_parser.cc"],
        },
        note: "an unresolved metrics port takes a port named like metrics or a declared 8002",
    },
    // trtllm-serve: `tensorrt_llm/commands/serve.py` (click: `--port` default 8000); Prometheus
    // text on `/prometheus/metrics` (`tensorrt_llm/serve/openai_server.py`).
    EngineSpec {
        id: "trtllm-serve",
        name: "TensorRT-LLM trtllm-serve",
        backend: "trtllm",
        family: "trtllm",
        images: &[],
        commands: &[CommandMatch::Program("trtllm-serve", None)],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: &[],
        default_port: Some(8000),
        metrics: MetricsListener::Serving,
        metrics_path: "/prometheus/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::On,
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "trtllm_",
            metrics: &[
                "trtllm_e2e_request_latency_seconds",
                "trtllm_generation_tokens_total",
                "trtllm_kv_cache_hit_rate",
                "trtllm_kv_cache_utilization",
                "trtllm_num_requests_running",
                "trtllm_num_requests_waiting",
                "trtllm_prompt_tokens_total",
                "trtllm_request_error_total",
                "trtllm_request_success_total",
                "trtllm_time_per_output_token_seconds",
                "trtllm_time_to_first_token_seconds",
            ],
        },
        source: Source {
            repo: "NVIDIA/TensorRT-LLM",
            files: &[
                "tensorrt_llm/commands/serve.py",
                "tensorrt_llm/serve/openai_server.py",
            ],
        },
        note: "",
    },
    // LMDeploy: `lmdeploy/cli/serve.py` (`lmdeploy serve api_server`, `--server-port` 23333);
    // `/metrics` on the serving port. Metrics arrived in v0.9.2 with `--enable-metrics`
    // (InternLM/lmdeploy 1e8ce56d, #3534; `lmdeploy/cli/utils.py`); v0.11.0 turned them on by
    // default and replaced the flag with `--disable-metrics` (28de9a86, #4108).
    EngineSpec {
        id: "lmdeploy",
        name: "LMDeploy",
        backend: "lmdeploy",
        family: "lmdeploy",
        images: &[ImageMatch::NameWord("lmdeploy")],
        commands: &[CommandMatch::Program("lmdeploy", Some("serve"))],
        requires: None,
        flag_spelling: FlagSpelling::Exact,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--server-port"],
        port_env: &[],
        default_port: Some(23333),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::ByVersion {
            added: (0, 9, 2),
            enable: "--enable-metrics",
            on_by_default: (0, 11, 0),
            disable: "--disable-metrics",
        },
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "lmdeploy:",
            metrics: &[
                "lmdeploy:e2e_request_latency_seconds",
                "lmdeploy:generation_tokens_total",
                "lmdeploy:gpu_cache_usage_perc",
                "lmdeploy:num_requests_running",
                "lmdeploy:num_requests_waiting",
                "lmdeploy:prompt_tokens_total",
                "lmdeploy:request_success_total",
                "lmdeploy:time_per_output_token_seconds",
                "lmdeploy:time_to_first_token_seconds",
            ],
        },
        source: Source {
            repo: "InternLM/lmdeploy",
            files: &["lmdeploy/cli/serve.py", "lmdeploy/cli/utils.py"],
        },
        note: "metrics arrived in 1e8ce56d (#3534); 28de9a86 (#4108) turned them on by default",
    },
    // llama.cpp: `common/arg.cpp` (`--port` default 8080, env `LLAMA_ARG_PORT`; `--metrics`, env
    // `LLAMA_ARG_ENDPOINT_METRICS`, true as `1`/`true`/`on`/`enabled`). Its parser
    // (`common_params_parse_ex`) turns `_` into `-` in a `--` word and looks the whole word up,
    // so `--port=8080` is an invalid argument; a repeated flag keeps the last value;
    // `tools/server/server.cpp` serves `/metrics` on the serving port.
    EngineSpec {
        id: "llamacpp",
        name: "llama.cpp server",
        backend: "llamacpp",
        family: "llamacpp",
        images: &[
            ImageMatch::NameContains("llama.cpp"),
            ImageMatch::NameWord("llamacpp"),
        ],
        commands: &[
            CommandMatch::ProgramContains("llama-server"),
            CommandMatch::ProgramContains("llamacpp"),
        ],
        requires: None,
        flag_spelling: FlagSpelling::DashOrUnderscore,
        flag_values: FlagValues::SpaceOnly,
        signature_flags: &[],
        positional_model: false,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: &["LLAMA_ARG_PORT"],
        default_port: Some(8080),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::RequiresFlag {
            flag: "--metrics",
            env: Some(EnvSwitch {
                var: "LLAMA_ARG_ENDPOINT_METRICS",
                // How `common/arg.cpp` reads a boolean environment value.
                truth: BoolWords {
                    words: &["1", "true", "on", "enabled"],
                    any_case: false,
                },
            }),
        },
        workers: &[
            WorkerMatch::Program("rpc-server", None),
            WorkerMatch::ImageNameContains("worker"),
        ],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "llamacpp:",
            metrics: &[
                "llamacpp:kv_cache_usage_ratio",
                "llamacpp:prompt_tokens_cached_total",
                "llamacpp:prompt_tokens_total",
                "llamacpp:requests_deferred",
                "llamacpp:requests_processing",
                "llamacpp:tokens_predicted_total",
            ],
        },
        source: Source {
            repo: "ggml-org/llama.cpp",
            files: &["common/arg.cpp", "tools/server/server.cpp"],
        },
        note: "a repeated flag keeps the last value",
    },
    // Aphrodite Engine (a vLLM fork): `aphrodite/entrypoints/cli/serve.py` (`aphrodite serve`)
    // and `cli/run.py` (`run`, kept as an alias), `cli/main.py` (subcommands `bench`, `chat`,
    // `complete`, `collect-env`, `run-batch`), `aphrodite/entrypoints/openai/cli_args.py`
    // (`--port` default 2242, the model first), `aphrodite/engine/arg_utils.py`
    // (`--disable-log-stats`, model flags), `aphrodite/utils/argparse_utils.py`
    // (`FlexibleArgumentParser`: `_` is `-` in flag names); `docker/Dockerfile` (target
    // `aphrodite-openai`, ENTRYPOINT `aphrodite run`; published as `alpindale/aphrodite-openai`,
    // `docs/src/content/docs/installation/installation.md`); `docker/Dockerfile.cpu` and older
    // releases run `python -m aphrodite.endpoints.openai.api_server`
    // (`aphrodite/endpoints/openai/args.py`, the same port). Metrics: `/metrics` on the serving
    // app (`aphrodite/entrypoints/serve/instrumentator/metrics.py`), named `aphrodite:*`
    // (`aphrodite/v1/metrics/loggers.py`). Read at aphrodite-engine/aphrodite-engine b42eeec2.
    EngineSpec {
        id: "aphrodite",
        name: "Aphrodite Engine",
        backend: "aphrodite",
        family: "aphrodite",
        images: &[ImageMatch::NameWord("aphrodite")],
        commands: &[
            CommandMatch::Program("aphrodite", Some("serve")),
            CommandMatch::Program("aphrodite", Some("run")),
            CommandMatch::Module("aphrodite.entrypoints.openai.api_server"),
            CommandMatch::Module("aphrodite.endpoints.openai.api_server"),
        ],
        requires: None,
        flag_spelling: FlagSpelling::DashOrUnderscore,
        flag_values: FlagValues::SpaceOrEquals,
        signature_flags: &[
            "--model",
            "--served-model-name",
            "--tensor-parallel-size",
            "--max-model-len",
            "--gpu-memory-utilization",
        ],
        positional_model: true,
        non_server_subcommands: &["bench", "chat", "complete", "collect-env", "run-batch"],
        port_flags: &["--port"],
        port_env: &[],
        default_port: Some(2242),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        no_metrics: &[],
        switch: MetricsSwitch::DisabledBy("--disable-log-stats"),
        workers: &[],
        wrappers: &[],
        setup_programs: &[],
        lookalike_words: &[],
        supported_by_default: false,
        dashboard: Dashboard {
            prefix: "aphrodite:",
            metrics: &[],
        },
        source: Source {
            repo: "aphrodite-engine/aphrodite-engine",
            files: &[
                "aphrodite/entrypoints/cli/serve.py",
                "aphrodite/entrypoints/openai/cli_args.py",
                "aphrodite/engine/arg_utils.py",
                "aphrodite/utils/argparse_utils.py",
                "docker/Dockerfile",
                "aphrodite/entrypoints/serve/instrumentator/metrics.py",
                "aphrodite/v1/metrics/loggers.py",
            ],
        },
        note: "",
    },
];

/// The family of a backend label value (`vllm-pd` → `vllm`); unknown values are their own family.
pub fn family_of(backend: &str) -> &str {
    CATALOGUE
        .iter()
        .find(|e| e.backend == backend)
        .map_or(backend, |e| e.family)
}

/// The backends the default policy labels: base engines in catalogue order, then refinements
/// (`[vllm, sglang, vllm-pd]`), as the chart, `deploy/` and the docs write them.
pub fn default_supported_backends() -> Vec<String> {
    let (base, refined): (Vec<&EngineSpec>, Vec<&EngineSpec>) = CATALOGUE
        .iter()
        .filter(|e| e.supported_by_default)
        .partition(|e| e.requires.is_none());
    let mut out: Vec<String> = Vec::new();
    for e in base.into_iter().chain(refined) {
        if !out.iter().any(|b| b == e.backend) {
            out.push(e.backend.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_ids_are_unique_and_backends_valid_label_values() {
        for (i, e) in CATALOGUE.iter().enumerate() {
            assert!(
                CATALOGUE[i + 1..].iter().all(|o| o.id != e.id),
                "duplicate {}",
                e.id
            );
            assert!(
                super::super::labels::is_label_value(e.backend),
                "{}",
                e.backend
            );
        }
        assert_eq!(family_of("vllm-pd"), "vllm");
        assert_eq!(family_of("sglang-router"), "sglang");
        assert_eq!(family_of("unknown"), "unknown");
    }
}
