//! The inference engines, as data: one row each. Adding an engine is adding a row.
//! Rows are tried in order, so a refinement (vLLM prefill/decode) comes before its base engine
//! and a specific image name before a broader one.

/// How an image names an engine.
#[derive(Debug)]
pub enum ImageMatch {
    /// The last path component equals this (`vllm-openai`, kept by private mirrors).
    Name(&'static str),
    /// The last path component contains this (vendor builds: `vllm-tpu`, `vllm-openai-cpu`).
    NameContains(&'static str),
    /// The repository path contains this (`ai-dynamo/`).
    PathContains(&'static str),
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
    /// A script by file name (`launch_triton_server.py`).
    Script(&'static str),
    /// Any command with an argument starting with this (`--triton_model_repo_dir=`).
    ArgPrefix(&'static str),
}

/// Where the engine serves Prometheus metrics.
#[derive(Debug)]
pub enum MetricsListener {
    /// On the serving port (`port_flags`, else `default_port`).
    Serving,
    /// On its own listener: a flag, else a default when the engine has one.
    Separate {
        flags: &'static [&'static str],
        default: Option<u16>,
    },
    /// On a port named by an environment variable; no metrics when it is unset.
    EnvVar(&'static str),
}

/// Whether metrics need switching on.
#[derive(Debug)]
pub enum MetricsSwitch {
    On,
    /// Served only with this flag.
    RequiresFlag(&'static str),
    /// Recorded unless this flag is given.
    DisabledBy(&'static str),
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
    /// The row applies only when the serving command has this flag (vLLM PD: `--kv-transfer-config`).
    pub requires_flag: Option<&'static str>,
    /// First arguments that make the engine's program a client, not a server (`vllm bench`).
    pub non_server_subcommands: &'static [&'static str],
    pub port_flags: &'static [&'static str],
    /// An environment variable the engine reads its port from when no flag is given.
    pub port_env: Option<&'static str>,
    pub default_port: Option<u16>,
    pub metrics: MetricsListener,
    pub metrics_path: &'static str,
    pub switch: MetricsSwitch,
    pub workers: &'static [WorkerMatch],
}

const VLLM: EngineSpec = EngineSpec {
    id: "vllm",
    name: "vLLM",
    backend: "vllm",
    family: "vllm",
    images: &[
        ImageMatch::Name("vllm-openai"),
        ImageMatch::NameContains("vllm"),
    ],
    commands: &[
        CommandMatch::Program("vllm", Some("serve")),
        CommandMatch::Module("vllm.entrypoints.openai.api_server"),
        CommandMatch::Module("vllm.entrypoints.api_server"),
    ],
    requires_flag: None,
    non_server_subcommands: &["bench", "chat", "complete", "collect-env", "run-batch"],
    port_flags: &["--port"],
    port_env: None,
    default_port: Some(8000),
    metrics: MetricsListener::Serving,
    metrics_path: "/metrics",
    switch: MetricsSwitch::DisabledBy("--disable-log-stats"),
    workers: &[
        WorkerMatch::WorkerArg,
        WorkerMatch::Program("ray", Some("start")),
    ],
};

pub const CATALOGUE: &[EngineSpec] = &[
    // vLLM with a KV-transfer config is one side of a prefill/decode pair.
    EngineSpec {
        id: "vllm-pd",
        name: "vLLM prefill/decode",
        backend: "vllm-pd",
        requires_flag: Some("--kv-transfer-config"),
        ..VLLM
    },
    VLLM,
    EngineSpec {
        id: "dynamo-frontend",
        name: "Dynamo frontend",
        backend: "dynamo",
        family: "dynamo",
        images: &[],
        commands: &[CommandMatch::Module("dynamo.frontend")],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--http-port"],
        port_env: None,
        default_port: Some(8000),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        switch: MetricsSwitch::On,
        workers: &[],
    },
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
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &[],
        port_env: None,
        default_port: None,
        metrics: MetricsListener::EnvVar("DYN_SYSTEM_PORT"),
        metrics_path: "/metrics",
        switch: MetricsSwitch::On,
        workers: &[],
    },
    EngineSpec {
        id: "sglang-router",
        name: "SGLang router",
        backend: "sglang-router",
        family: "sglang",
        images: &[ImageMatch::Name("sglang-router")],
        commands: &[CommandMatch::Module("sglang_router.launch_router")],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: None,
        default_port: Some(30000),
        metrics: MetricsListener::Separate {
            flags: &["--prometheus-port"],
            default: Some(29000),
        },
        metrics_path: "/metrics",
        switch: MetricsSwitch::On,
        workers: &[],
    },
    EngineSpec {
        id: "sglang",
        name: "SGLang",
        backend: "sglang",
        family: "sglang",
        images: &[
            ImageMatch::Name("sglang"),
            ImageMatch::NameContains("sglang"),
        ],
        commands: &[
            CommandMatch::Module("sglang.launch_server"),
            CommandMatch::Program("sglang", Some("serve")),
        ],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: None,
        default_port: Some(30000),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        switch: MetricsSwitch::RequiresFlag("--enable-metrics"),
        workers: &[WorkerMatch::RankFlag("--node-rank")],
    },
    EngineSpec {
        id: "tgi",
        name: "Text Generation Inference",
        backend: "tgi",
        family: "tgi",
        images: &[ImageMatch::NameContains("text-generation-inference")],
        commands: &[CommandMatch::Program("text-generation-launcher", None)],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: Some("PORT"),
        // The official image sets PORT=80 for its launcher.
        default_port: Some(80),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        switch: MetricsSwitch::On,
        workers: &[],
    },
    EngineSpec {
        id: "triton",
        name: "Triton Inference Server",
        backend: "triton",
        family: "triton",
        images: &[ImageMatch::NameContains("tritonserver")],
        commands: &[
            CommandMatch::Program("tritonserver", None),
            CommandMatch::Script("launch_triton_server.py"),
            CommandMatch::ArgPrefix("--triton_model_repo"),
        ],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--http-port"],
        port_env: None,
        default_port: Some(8000),
        metrics: MetricsListener::Separate {
            flags: &["--metrics-port"],
            default: Some(8002),
        },
        metrics_path: "/metrics",
        switch: MetricsSwitch::DisabledBy("--allow-metrics=false"),
        workers: &[WorkerMatch::WorkerArg],
    },
    EngineSpec {
        id: "trtllm-serve",
        name: "TensorRT-LLM trtllm-serve",
        backend: "trtllm",
        family: "trtllm",
        images: &[],
        commands: &[CommandMatch::Program("trtllm-serve", None)],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: None,
        default_port: Some(8000),
        metrics: MetricsListener::Serving,
        metrics_path: "/prometheus/metrics",
        switch: MetricsSwitch::On,
        workers: &[],
    },
    EngineSpec {
        id: "lmdeploy",
        name: "LMDeploy",
        backend: "lmdeploy",
        family: "lmdeploy",
        images: &[ImageMatch::NameContains("lmdeploy")],
        commands: &[CommandMatch::Program("lmdeploy", Some("serve"))],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--server-port"],
        port_env: None,
        default_port: Some(23333),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        switch: MetricsSwitch::RequiresFlag("--enable-metrics"),
        workers: &[],
    },
    EngineSpec {
        id: "llamacpp",
        name: "llama.cpp server",
        backend: "llamacpp",
        family: "llamacpp",
        images: &[
            ImageMatch::NameContains("llama.cpp"),
            ImageMatch::NameContains("llamacpp"),
        ],
        commands: &[
            CommandMatch::ProgramContains("llama-server"),
            CommandMatch::ProgramContains("llamacpp"),
        ],
        requires_flag: None,
        non_server_subcommands: &[],
        port_flags: &["--port"],
        port_env: None,
        default_port: Some(8080),
        metrics: MetricsListener::Serving,
        metrics_path: "/metrics",
        switch: MetricsSwitch::RequiresFlag("--metrics"),
        workers: &[
            WorkerMatch::Program("rpc-server", None),
            WorkerMatch::ImageNameContains("worker"),
        ],
    },
];

/// The family of a backend label value (`vllm-pd` → `vllm`); unknown values are their own family.
pub fn family_of(backend: &str) -> &str {
    CATALOGUE
        .iter()
        .find(|e| e.backend == backend)
        .map_or(backend, |e| e.family)
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
