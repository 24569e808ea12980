"""Object storage against a real S3-compatible server (moto's, on 127.0.0.1, started here).

CLI and API read an ``s3://`` glob and a hive prefix and write a file and a partitioned dataset
to ``s3://``; the rows equal the local engine's on the same data. Bad credentials, a missing
bucket, an unreachable endpoint and an unsupported scheme are one-line errors, and neither a
failed nor a killed run leaves anything at the output prefix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("moto", reason="moto[server] (the dev extra) runs the S3 tests")
pytest.importorskip("boto3")

from helpers import run_cli
from s3_server import REGION, free_port, moto_server, s3_filesystem

from fastsample.engines.parquet import sample_parquet
from fastsample.errors import InputError

FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="module")
def server():
    """The server, with an IAM user whose key is the only one accepted (auth enforced)."""
    import boto3

    # moto enforces credentials after this many requests: the three that create the user.
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as url:
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="tester")
        iam.put_user_policy(
            UserName="tester",
            PolicyName="all",
            PolicyDocument='{"Version": "2012-10-17", "Statement": '
            '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
        )
        key = iam.create_access_key(UserName="tester")["AccessKey"]
        yield url, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def s3(server, monkeypatch):
    """A fresh bucket; the AWS variables point at the server for this test only."""

    url, key, secret = server
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_REGION", REGION)
    bucket = f"b{uuid.uuid4().hex[:12]}"
    filesystem = s3_filesystem(url, key, secret)
    filesystem.create_dir(bucket)
    return filesystem, bucket


def _log(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(-4.0 + x @ np.array([1.0, -0.5, 0.25]))))
    return pa.table(
        {
            "id": np.arange(seed * n, (seed + 1) * n, dtype=np.int64),
            "y": (rng.random(n) < p).astype(np.int8),
            **{f: x[:, i] for i, f in enumerate(FEATURES)},
            "day": rng.integers(1, 4, size=n).astype(np.int64),
        }
    )


@pytest.fixture
def logs(s3, tmp_path):
    """The same three files locally and under s3://BUCKET/logs/, plus a hive copy of both."""
    filesystem, bucket = s3
    local = tmp_path / "logs"
    local.mkdir()
    tables = [_log(4000, s) for s in range(3)]
    for i, t in enumerate(tables):
        pq.write_table(t, local / f"part-{i}.parquet")
        pq.write_table(t, f"{bucket}/logs/part-{i}.parquet", filesystem=filesystem)
    everything = pa.concat_tables(tables)
    for day in (1, 2):
        part = everything.filter(pa.compute.equal(everything["day"], day)).drop_columns(["day"])
        os.makedirs(tmp_path / "hive" / f"day={day}")
        pq.write_table(part, tmp_path / "hive" / f"day={day}" / "p.parquet")
        pq.write_table(part, f"{bucket}/hive/day={day}/p.parquet", filesystem=filesystem)
    return tmp_path, f"s3://{bucket}"


def _read(path: str, filesystem=None) -> pl.DataFrame:
    import pyarrow.dataset as ds

    table = ds.dataset(path, filesystem=filesystem, format="parquet", partitioning="hive")
    return pl.from_arrow(table.to_table())


def _strip(uri: str) -> str:
    return uri.removeprefix("s3://")


def test_api_glob_and_hive_prefix_equal_the_local_engine(s3, logs):
    filesystem, _ = s3
    tmp, root = logs
    kw = {"label": "y", "features": FEATURES, "rate": 0.2, "seed": 3, "progress": False}
    for src, local in (
        (f"{root}/logs/*.parquet", str(tmp / "logs" / "*.parquet")),
        (f"{root}/hive/", str(tmp / "hive")),
    ):
        name = uuid.uuid4().hex[:6]
        remote = sample_parquet(src, f"{root}/out/{name}.parquet", **kw)
        here = sample_parquet(local, str(tmp / f"{name}.parquet"), **kw)
        assert remote.rows_out == here.rows_out > 0
        assert remote.kappa == here.kappa
        got = pq.read_table(_strip(f"{root}/out/{name}.parquet"), filesystem=filesystem)
        assert got.equals(pq.read_table(tmp / f"{name}.parquet"))
        assert remote.source[0].startswith("s3://")


def test_api_partitioned_dataset_to_s3(s3, logs):
    filesystem, _ = s3
    tmp, root = logs
    kw = {"label": "y", "features": FEATURES, "rate": 0.2, "seed": 1, "progress": False}
    sample_parquet(
        f"{root}/logs/*.parquet", f"{root}/ds", partition_by="day", max_rows_per_file=300, **kw
    )
    sample_parquet(str(tmp / "logs"), str(tmp / "one.parquet"), **kw)
    here = pl.read_parquet(tmp / "one.parquet")
    got = _read(_strip(f"{root}/ds"), filesystem)
    assert sorted(got["id"].to_list()) == sorted(here["id"].to_list())
    assert got.sort("id").select(here.columns).equals(here.sort("id"), null_equal=True)
    infos = filesystem.get_file_info(pa.fs.FileSelector(_strip(f"{root}/ds"), recursive=True))
    names = {i.path.rsplit("/", 1)[-1] for i in infos}
    assert {"_SUCCESS", "_fastsample.json"} <= names
    parts = [i for i in infos if i.path.endswith(".parquet")]
    assert all(pq.read_metadata(p.path, filesystem=filesystem).num_rows <= 300 for p in parts)
    assert all(
        b"fastsample" in pq.read_schema(p.path, filesystem=filesystem).metadata for p in parts
    )
    # No staging left beside the output.
    top = filesystem.get_file_info(pa.fs.FileSelector(_strip(root), recursive=False))
    assert not [i for i in top if "fastsample-" in i.path]


def _cli(*args: str, env=None, timeout=300) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout, env=env)


def test_cli_reads_and_writes_s3(s3, logs):
    filesystem, _ = s3
    tmp, root = logs
    common = ["--label", "y", "-f", ",".join(FEATURES), "--rate", "0.2", "--seed", "2", "-q"]
    report = f"{root}/cli/report.json"
    res = _cli(
        "sample", f"{root}/hive/", "-o", f"{root}/cli/s.parquet", "--report", report, *common
    )
    assert res.returncode == 0, res.stderr
    with filesystem.open_input_stream(_strip(report)) as fh:
        assert (
            json.loads(fh.read())["rows_out"]
            == pq.read_metadata(_strip(f"{root}/cli/s.parquet"), filesystem=filesystem).num_rows
        )
    res = _cli(
        "sample",
        f"{root}/logs/*.parquet",
        "-o",
        f"{root}/cli/ds",
        "--partition-by",
        "day",
        "--max-rows-per-file",
        "400",
        *common,
    )
    assert res.returncode == 0, res.stderr
    local = _cli("sample", str(tmp / "hive"), "-o", str(tmp / "h.parquet"), *common)
    assert local.returncode == 0, local.stderr
    got = pq.read_table(_strip(f"{root}/cli/s.parquet"), filesystem=filesystem)
    assert got.equals(pq.read_table(tmp / "h.parquet"))
    local = _cli("sample", str(tmp / "logs"), "-o", str(tmp / "l.parquet"), *common)
    here = pl.read_parquet(tmp / "l.parquet").sort("id")
    got = _read(_strip(f"{root}/cli/ds"), filesystem).sort("id").select(here.columns)
    assert got.equals(here)
    res = _cli("inspect", f"{root}/hive/", "--label", "y", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rows"] == pq.read_table(tmp / "hive").num_rows


@pytest.mark.parametrize(
    ("change", "src", "out", "message"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "{root}/logs/*.parquet", None, "access denied"),
        ({}, "s3://nosuchbucket/logs/a.parquet", None, "bucket 'nosuchbucket' does not exist"),
        ({}, "{root}/logs/nope.parquet", None, "nope.parquet' does not exist"),
        ({}, "{root}/logs/", "s3://nosuchbucket/o.parquet", "bucket 'nosuchbucket' does not exist"),
    ],
)
def test_bad_credentials_missing_bucket_or_object_are_one_line_errors(
    s3, logs, monkeypatch, change, src, out, message
):
    tmp, root = logs
    for k, v in change.items():
        monkeypatch.setenv(k, v)
    src = src.format(root=root)
    out = out or str(tmp / "o.parquet")
    res = _cli("sample", src, "-o", out, "--label", "y", "--strategy", "uniform")
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and res.stderr.count("\n") == 1
    assert (src if out.startswith(str(tmp)) else out) in res.stderr
    assert "Traceback" not in res.stderr and not (tmp / "o.parquet").exists()
    with pytest.raises(InputError, match=message):
        sample_parquet(src, out, label="y", strategy="uniform", progress=False)


def test_unreachable_endpoint_fails_fast_and_unsupported_scheme(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    monkeypatch.setenv("AWS_REGION", REGION)
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    res = _cli(
        "sample",
        "s3://bucket/a.parquet",
        "-o",
        str(tmp_path / "o.parquet"),
        "--label",
        "y",
        "--strategy",
        "uniform",
        "--storage-option",
        f"endpoint_url={url}",
    )
    assert time.monotonic() - t0 < 60
    assert (
        res.returncode == 2
        and "unreachable" in res.stderr
        and "s3://bucket/a.parquet" in res.stderr
    )
    res = _cli("inspect", "ftp://host/a.parquet")
    assert res.returncode == 2 and "unsupported URI scheme 'ftp'" in res.stderr
    assert res.stderr.count("\n") == 1


def test_failed_and_killed_runs_leave_nothing_at_the_output_prefix(s3, logs, tmp_path):
    filesystem, bucket = s3
    _, root = logs
    script = textwrap.dedent(
        """
        import sys, time, pyarrow as pa
        from fastsample.engines.parquet import sample_parquet
        from fastsample.engines.sources import resolve_source, iter_batches
        src = resolve_source(sys.argv[1])
        mode = sys.argv[3]
        def batches():
            for i, (b, _) in enumerate(iter_batches(src, batch_rows=500)):
                yield b
                if i == 6:
                    if mode == "fail":
                        raise RuntimeError("boom")
                    open(sys.argv[4], "w").close()
                    time.sleep(600)
        reader = pa.RecordBatchReader.from_batches(src.schema, batches())
        sample_parquet(reader, sys.argv[2], label="y", strategy="uniform", rate=0.5,
                       max_rows_per_file=50, progress=False)
        """
    )
    out = f"{root}/killed"
    ready = tmp_path / "ready"
    res = subprocess.run(
        [sys.executable, "-c", script, f"{root}/logs/*.parquet", out, "fail", str(ready)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode != 0 and "boom" in res.stderr
    listing = filesystem.get_file_info(pa.fs.FileSelector(bucket, recursive=True))
    assert not [i.path for i in listing if "killed" in i.path]  # nor any staging left
    proc = subprocess.Popen(
        [sys.executable, "-c", script, f"{root}/logs/*.parquet", out, "kill", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert filesystem.get_file_info(_strip(out)).type == pa.fs.FileType.NotFound
    listing = filesystem.get_file_info(
        pa.fs.FileSelector(_strip(out), allow_not_found=True, recursive=True)
    )
    assert listing == []


def test_toolkit_reads_s3_like_local(s3, logs):
    from fastsample.engines.training import train_pilot
    from fastsample.toolkit.evaluation import evaluate_parquet
    from fastsample.toolkit.report import imbalance_report

    tmp, root = logs
    remote = imbalance_report(f"{root}/hive/", label="y").as_dict()
    local = imbalance_report(str(tmp / "hive"), label="y").as_dict()
    assert remote["positives"] == local["positives"] and remote["negatives"] == local["negatives"]
    kw = {"label": "y", "features": FEATURES, "seed": 5}
    assert (
        train_pilot(f"{root}/logs/", **kw).fingerprint
        == train_pilot(str(tmp / "logs"), **kw).fingerprint
    )
    sample_parquet(f"{root}/logs/", f"{root}/ev.parquet", rate=0.5, progress=False, **kw)
    sample_parquet(str(tmp / "logs"), str(tmp / "ev.parquet"), rate=0.5, progress=False, **kw)
    a = evaluate_parquet(f"{root}/ev.parquet", label="y", score="sampling_prob").as_dict()
    b = evaluate_parquet(str(tmp / "ev.parquet"), label="y", score="sampling_prob").as_dict()
    assert a == b


def test_pilot_saved_to_and_read_from_s3(s3, logs):
    """``pilot -o s3://...`` stages then publishes; ``sample --pilot s3://...`` reads it."""
    filesystem, bucket = s3
    tmp, root = logs
    common = ["--label", "y", "-f", ",".join(FEATURES), "--seed", "4", "-q"]
    uri = f"{root}/pilots/p.npz"
    res = _cli("pilot", f"{root}/logs/", "-o", uri, *common)
    assert res.returncode == 0, res.stderr
    listing = filesystem.get_file_info(pa.fs.FileSelector(bucket, recursive=True))
    assert [i.path for i in listing if "pilots/" in i.path] == [f"{bucket}/pilots/p.npz"]
    assert not [i.path for i in listing if "fastsample-" in i.path]
    again = _cli("pilot", f"{root}/logs/", "-o", uri, *common)
    assert again.returncode == 2 and "already exists" in again.stderr and uri in again.stderr
    assert _cli("pilot", str(tmp / "logs"), "-o", str(tmp / "p.npz"), *common).returncode == 0
    sample = ["--label", "y", "--rate", "0.3", "--seed", "4", "-q"]
    for pilot, out in ((uri, "remote.parquet"), (str(tmp / "p.npz"), "local.parquet")):
        res = _cli("sample", f"{root}/logs/", "-o", str(tmp / out), "--pilot", pilot, *sample)
        assert res.returncode == 0, res.stderr
    assert pq.read_table(tmp / "remote.parquet").equals(pq.read_table(tmp / "local.parquet"))
    missing = f"{root}/no.npz"
    res = _cli("sample", f"{root}/logs/", "-o", str(tmp / "o.parquet"), "--pilot", missing, *sample)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert f"pilot file '{missing}' does not exist" in res.stderr
    assert not (tmp / "o.parquet").exists()


def test_pilot_api_round_trip_and_a_failed_save_leaves_nothing(s3, logs):
    from fastsample.core.pilot import Pilot
    from fastsample.engines.publish import save_pilot
    from fastsample.engines.storage import open_pilot
    from fastsample.engines.training import train_pilot

    filesystem, bucket = s3
    tmp, root = logs
    pilot = train_pilot(str(tmp / "logs"), label="y", features=FEATURES, seed=2)
    save_pilot(pilot, f"{root}/api.npz")
    back = open_pilot(f"{root}/api.npz")
    assert isinstance(back, Pilot) and back.fingerprint == pilot.fingerprint
    kw = {"label": "y", "rate": 0.3, "seed": 2, "progress": False}
    remote = sample_parquet(f"{root}/logs/", str(tmp / "a.parquet"), pilot=f"{root}/api.npz", **kw)
    local = sample_parquet(str(tmp / "logs"), str(tmp / "b.parquet"), pilot=pilot, **kw)
    assert remote.pilot_fingerprint == local.pilot_fingerprint and remote.kappa == local.kappa
    with pytest.raises(InputError, match="already exists"):
        save_pilot(pilot, f"{root}/api.npz", overwrite=False)
    with pytest.raises(InputError, match="is a URI"):
        pilot.save(f"{root}/direct.npz")  # never a local file named "s3:"
    assert not os.path.exists("s3:")

    class Broken:
        """Writes part of a file, then fails, as an interrupted save would."""

        def save(self, path):
            with open(path, "wb") as fh:
                fh.write(b"PK\x03\x04 partial")
            raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match=r"no space left.*nothing was written"):
        save_pilot(Broken(), f"{root}/broken.npz")
    listing = filesystem.get_file_info(pa.fs.FileSelector(bucket, recursive=True))
    assert not [i.path for i in listing if "broken" in i.path or "fastsample-" in i.path]
