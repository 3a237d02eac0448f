"""Start moto's server with the fixes the Rust AWS SDK needs.

Usage: python moto_server.py HOST PORT [--exit-with-stdin]

With --exit-with-stdin the server stops when its standard input closes, so a test process
that dies (or never runs its cleanup) cannot leave a server behind.

moto 5.2.x answers GetBucketVersioning (and a few other S3 reads) with a root element
named after the operation, while S3 uses the shape's own name (`VersioningConfiguration`).
botocore does not mind; the Rust SDK rejects the document ("invalid XML root"). moto
serialises replies from botocore's service model, so adding the missing `resultWrapper`
to that model in memory before the server starts makes the replies match real S3.
"""

import os
import sys
import threading

import moto.core.utils as moto_utils

_RESULT_WRAPPERS = {
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketAccelerateConfiguration": "AccelerateConfiguration",
    "GetBucketRequestPayment": "RequestPaymentConfiguration",
    "GetBucketWebsite": "WebsiteConfiguration",
}

_original_load_service_model = moto_utils._load_service_model


def _load_service_model_with_s3_wrappers(service_name, model_name):
    model = _original_load_service_model(service_name, model_name)
    if service_name == "s3" and model_name == "service-2":
        for operation, wrapper in _RESULT_WRAPPERS.items():
            output = model["operations"].get(operation, {}).get("output")
            if output is not None:
                output.setdefault("resultWrapper", wrapper)
    return model


moto_utils._load_service_model = _load_service_model_with_s3_wrappers


def _faithful_get_bucket_replication():
    """moto 5.2.5 stores a replication configuration as sent, but its GetBucketReplication
    answers every rule with `DeleteMarkerReplication: Disabled` and `Filter: {Prefix: ""}`
    and drops `SourceSelectionCriteria`: a reconciler comparing what it wrote would see
    drift forever. Answer with the rule's own values, as S3 does."""
    from moto.s3 import responses
    from moto.s3.exceptions import ReplicationConfigurationNotFoundError

    def get_bucket_replication(self):
        self.data["Action"] = "GetBucketReplication"
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        rules = []
        for rule in replication["Rule"]:
            answer = {
                "ID": rule["ID"],
                "Priority": rule["Priority"],
                "Status": rule["Status"],
                "DeleteMarkerReplication": rule.get(
                    "DeleteMarkerReplication", {"Status": "Disabled"}
                ),
                "Filter": rule.get("Filter") or {"Prefix": ""},
                "Destination": rule["Destination"],
            }
            if "SourceSelectionCriteria" in rule:
                answer["SourceSelectionCriteria"] = rule["SourceSelectionCriteria"]
            rules.append(answer)
        return self.serialized(
            responses.ActionResult(
                {"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}}
            )
        )

    responses.S3Response.get_bucket_replication = get_bucket_replication


_faithful_get_bucket_replication()


def _exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    args = sys.argv[1:]
    if len(args) not in (2, 3) or (len(args) == 3 and args[2] != "--exit-with-stdin"):
        sys.exit("usage: moto_server.py HOST PORT [--exit-with-stdin]")
    host, port = args[0], args[1]
    if len(args) == 3:
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    from moto.server import main as moto_main

    moto_main(["-H", host, "-p", port])


if __name__ == "__main__":
    main()
