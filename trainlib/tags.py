"""Every MLflow tag name the project writes or reads: one place to look them up.

Run tags (every run), their values set by trainlib.startup.run_tags and trainlib.distributed;
sweep tags (the parent run and its trials), set by launcher.sweep.
"""
# --- every run -------------------------------------------------------------------------------
SEED = "launch.seed"
TORCH_VERSION = "launch.torch_version"
DEVICE = "launch.device"
MODEL = "launch.model"
DATASET = "launch.dataset"
THREADS = "launch.threads"  # torch threads the run used
COMMAND = "launch.command"  # the command line that started the run (passed in by the launcher)
GIT_COMMIT = "mlflow.source.git.commit"
FINETUNE_SOURCE = "launch.finetune.source"
RUN_DIR = "launch.run_dir"  # the run folder (checkpoints, TensorBoard), for resume and eval
KIND = "launch.kind"  # "sweep" (a sweep's parent run), "lr-find"; absent on training runs
ERROR = "launch.error"  # why a run FAILED
LOG_MODEL_ERROR = "launch.log_model.error"  # why the MLflow model copy was skipped
STOP_REASON = "launch.stop_reason"  # the diagnosis check, early stop, time budget or Tune scheduler that stopped it
WARNING_PREFIX = "launch.warning."  # + a diagnosis check's name
EVAL_SOURCE = "launch.eval.source"  # on a `launch eval` run: the weights evaluated
REPRODUCES = "launch.reproduces"  # on a `launch train --reproduce` run: the run it reproduces
# what reproducing a run needs besides its config: package versions (where installed), with
# TORCH_VERSION, DEVICE and GIT_COMMIT above
TORCHVISION_VERSION = "launch.torchvision_version"
RAY_VERSION = "launch.ray_version"
MLFLOW_VERSION = "launch.mlflow_version"
LAUNCH_VERSION = "launch.launch_version"
PACKAGE_VERSIONS = {"torchvision": TORCHVISION_VERSION, "ray": RAY_VERSION, "mlflow": MLFLOW_VERSION,
                    "launch": LAUNCH_VERSION}  # distribution -> tag

# --- DDP -------------------------------------------------------------------------------------
WORLD_SIZE = "launch.world_size"
BACKEND = "launch.backend"
GLOBAL_BATCH_SIZE = "launch.global_batch_size"
PLACEMENT = "launch.placement"  # each rank's node id, node IP, hostname and GPU ids
JOB_ID = "launch.job_id"  # every rank's run of one DDP job: how the driver finds them when a rank fails
FAILED_RANK = "launch.failed_rank"  # the rank whose error failed the DDP job
RUN_URI = "launch.run_uri"  # where a finished run folder was copied (a remote output dir)

# --- sweeps ----------------------------------------------------------------------------------
SWEEP = "launch.sweep"  # on a sweep's parent run: the sweep's name
PARENT = "mlflow.parentRunId"  # on each trial's run: the parent run id
SWEEP_DIR = "launch.sweep_dir"
SMOKE = "launch.smoke"
TRIALS = "launch.trials"  # trial counts by state, on the parent
BEST_TRIAL = "launch.best_trial"
BEST_RUN_ID = "launch.best_run_id"
TRIAL_ID = "launch.trial_id"
SAMPLED = "launch.sampled"  # the sampled values of a trial, JSON
ATTEMPT = "launch.attempt"  # 1, 2, ... as Tune retries a trial
DISCARDED = "launch.discarded"  # a trial's run abandoned by a retry or a PBT exploit
NODE_IP = "launch.node_ip"
NODE_ID = "launch.node_id"
GPU_IDS = "launch.gpu_ids"
HOSTNAME = "launch.hostname"
