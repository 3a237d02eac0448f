"""Validate JSON documents against a JSON Schema (draft 2020-12), with the `jsonschema`
package from PyPI: a real validator, not the project's own reading of its schema.

Usage: python validate_json.py SCHEMA DOCUMENT...

Prints every violation as `DOCUMENT: PATH: MESSAGE` and exits 1 when there is any.
"""

import json
import sys

from jsonschema import Draft202012Validator


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as handle:
        schema = json.load(handle)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    failed = 0
    for path in sys.argv[2:]:
        with open(path) as handle:
            document = json.load(handle)
        for error in sorted(validator.iter_errors(document), key=lambda error: list(error.path)):
            location = "/".join(str(part) for part in error.absolute_path) or "(root)"
            print(f"{path}: {location}: {error.message}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
