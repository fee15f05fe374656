"""A real multi-node cluster, as a user with two machines has one: a Ray head and a worker node
started with the `ray start` CLI (token authentication on, as Ray 2.60 starts it), the worker in
its own mount namespace with an empty tmpfs over the work folder (it cannot see the head's
files, as a second machine cannot), an `mlflow server` whose artifacts go to an S3 server
(moto, on 127.0.0.1), and `--output-dir s3://...`.

- the defaults (SQLite store, local runs/) are refused before Ray schedules anything, with one
  line; no mlflow.db appears, here or on the isolated node;
- a client without the cluster's token is told what to set, within 30 s;
- a --smoke sweep of DDP trials (2 workers each) finishes with every trial in the one store,
  a rank on the isolated node, checkpoints in S3, and `launch eval PREFIX` works from a folder
  that never saw the run (the checkpoint comes from the tracking store).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cluster_services import RayCluster, launch, make_bucket, mlflow_server, one_error

pytestmark = pytest.mark.slow

TOKEN = "launch-test-token-0123456789abcdef"
BUCKET = "launch-runs"
SWEEP = """\
name: cluster
base: {model: net, data: digits, epochs: 1, batch_size: 32, loader: {num_workers: 0},
       tracking: {log_model: false}}
space:
  optimizer.lr: {choice: [0.01, 0.003]}
tune: {metric: valid/acc, mode: max, num_samples: 2, search: random, max_concurrent_trials: 1}
resources: {cpu: 1, gpu: 0, workers: 2}
checkpoints: {keep: 1}
smoke: {epochs: 1, num_samples: 2}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_service):
    """Its own Ray cluster and `mlflow server` (the tests stop and isolate nodes); the session's S3."""
    root = tmp_path_factory.mktemp("cluster")
    work = root / "work"  # where the user runs `launch`; the isolated node sees an empty tmpfs here
    work.mkdir()
    (work / "cluster.yaml").write_text(SWEEP)
    services = []
    try:
        s3_env = s3_service
        make_bucket(s3_env, BUCKET)
        server, url = mlflow_server(root / "mlflow", f"s3://{BUCKET}/mlartifacts", env=s3_env)
        services.append(server)
        # each node's scratch for run folders is its own: the isolated node's lies in its tmpfs
        env = {**s3_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, "LAUNCH_SCRATCH_DIR": str(root / "scratch")}
        ray = RayCluster(root / "ray", env)
        ray.start_head(num_cpus=1)
        ray.start_worker(num_cpus=2, isolate=work, label="isolated",
                         env={"LAUNCH_SCRATCH_DIR": str(work / ".scratch")})
        services.append(ray)
        ray.wait_nodes(2)
        yield {"root": root, "work": work, "url": url, "env": env, "ray": ray, "s3_env": s3_env}
    finally:
        for service in reversed(services):
            service.stop()


def isolated_files(cluster) -> list[str]:
    """What the isolated node sees in the work folder (looked at from inside its mount namespace)."""
    ray_start = next(s for s in cluster["ray"].services if s.name == "ray isolated").process.pid
    out = subprocess.run(["nsenter", "--mount", f"--target={ray_start}", "--", "find", str(cluster["work"]),
                          "-not", "-path", "*/.scratch*"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_defaults_are_refused_before_ray_schedules_anything(cluster):
    work = cluster["work"]
    before = sorted(p.name for p in work.iterdir())
    out, seconds = launch("sweep", "cluster.yaml", "--smoke", "--address", cluster["ray"].address, cwd=work,
                          env=cluster["env"])
    line = one_error(out)
    assert "SQLite file" in line and "local folder" in line and "--tracking-uri http://" in line, line
    assert seconds < 30
    assert sorted(p.name for p in work.iterdir()) == before  # no mlflow.db, no runs/
    assert not any(f.endswith(("mlflow.db", "/runs")) for f in isolated_files(cluster))


@pytest.mark.parametrize("auth", ["none", "wrong"])
def test_a_client_without_the_clusters_token_is_told_what_to_set(cluster, tmp_path, auth):
    env = {**cluster["env"], "HOME": str(tmp_path)}  # no ~/.ray/auth_token either
    if auth == "none":
        env.update({"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None})
    else:
        env["RAY_AUTH_TOKEN"] = "not-the-token-of-this-cluster-000"
    args = ["--tracking-uri", cluster["url"], "--output-dir", f"s3://{BUCKET}/runs"]
    out, seconds = launch("sweep", "cluster.yaml", "--smoke", "--address", cluster["ray"].address, *args,
                          cwd=cluster["work"], env=env)
    line = one_error(out)
    assert "token authentication" in line and "RAY_AUTH_MODE=token" in line and "RAY_AUTH_TOKEN" in line, line
    assert seconds < 30, seconds


def test_a_ddp_sweep_runs_across_the_nodes_into_one_store_and_s3(cluster, tmp_path):
    from mlflow import MlflowClient

    url, work = cluster["url"], cluster["work"]
    out, _ = launch("sweep", "cluster.yaml", "--smoke", "--address", cluster["ray"].address, "--tracking-uri", url,
                    "--output-dir", f"s3://{BUCKET}/runs", cwd=work, env=cluster["env"], timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    client = MlflowClient(url)
    (parent,) = client.search_runs([client.get_experiment_by_name("launch").experiment_id],
                                   filter_string="tags.`launch.sweep` = 'cluster'")
    trials = client.search_runs([parent.info.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(trials) == 2 and {t.info.status for t in trials} == {"FINISHED"}
    isolated_id = node_ids(cluster)["isolated"]
    placements = [json.loads(t.data.tags["launch.placement"]) for t in trials]
    assert any(rank["node_id"] == isolated_id for ranks in placements for rank in ranks), placements
    assert all({"node_id", "node_ip", "hostname", "gpu_ids"} <= set(rank) for ranks in placements for rank in ranks)

    sizes = s3_sizes(cluster["s3_env"])
    keys = list(sizes)
    (tmp_path / "s3_bytes.json").write_text(json.dumps(sizes, indent=1))  # the bytes each trial stored, kept
    for trial in trials:
        assert any(k.startswith("mlartifacts/") and k.endswith(f"{trial.info.run_id}/artifacts/checkpoints/best.pt")
                   for k in keys), keys
    assert any(k.startswith("runs/sweeps/cluster-smoke-") and "/ddp/" in k and k.endswith("/last.pt") for k in keys)
    assert not any(k.startswith("runs/") and "/trials/" in k and k.endswith(".pt") for k in keys)  # published without
    assert not any(p.name == "mlflow.db" for p in work.rglob("*"))
    assert not any(f.endswith("mlflow.db") for f in isolated_files(cluster))

    elsewhere = tmp_path / "never-saw-the-run"
    elsewhere.mkdir()
    on_isolated = [t for t, ranks in zip(trials, placements) if ranks[0]["node_id"] == isolated_id]
    assert on_isolated, placements  # rank 0 (the run's writer) there: its run folder is nowhere else
    prefix = on_isolated[0].info.run_id[:8]
    ev, _ = launch("eval", prefix, "--tracking-uri", url, cwd=elsewhere,
                   env={"LAUNCH_CACHE_DIR": str(elsewhere / "cache")})
    assert ev.returncode == 0, ev.stderr
    assert f"downloaded checkpoints/best.pt of run {prefix}" in ev.stderr
    assert "test acc" in ev.stdout


def node_ids(cluster) -> dict[str, str]:
    """label -> Ray node id, matched by the node manager port each node was started with."""
    probe = ("import json, ray, sys; from launcher.cluster.local_ray import join_ray; "
             "join_ray(sys.argv[1], logging_level='ERROR'); "
             "print(json.dumps({n['NodeManagerPort']: n['NodeID'] for n in ray.nodes() if n['Alive']}))")
    out = subprocess.run([sys.executable, "-c", probe, cluster["ray"].address], capture_output=True, text=True,
                         env={**os.environ, **cluster["env"]}, timeout=120, check=True)
    by_port = {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    return {label: by_port[port] for label, port in cluster["ray"].node_manager_ports.items()}


def s3_sizes(env: dict[str, str]) -> dict[str, int]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_DEFAULT_REGION"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"]: obj["Size"] for page in pages for obj in page.get("Contents", [])}
