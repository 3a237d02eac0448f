"""Validate JSON or YAML documents against a JSON Schema (draft 2020-12), with the
`jsonschema` package from PyPI: a real validator, not the project's own reading of its schema.

Usage: python validate_json.py [--invalid] SCHEMA DOCUMENT...

Documents ending in .yaml or .yml are read with PyYAML (as an editor's YAML language server
reads them), others as JSON. Prints every violation as `DOCUMENT: PATH: MESSAGE` and exits 1
when there is any. With --invalid the expectation turns round: every document must break the
schema, and each one that does not is printed and makes the exit code 1.
"""

import json
import sys

import yaml
from jsonschema import Draft202012Validator


def load(path):
    with open(path) as handle:
        if path.endswith((".yaml", ".yml")):
            return yaml.safe_load(handle)
        return json.load(handle)


def main():
    arguments = sys.argv[1:]
    expect_invalid = arguments[:1] == ["--invalid"]
    if expect_invalid:
        arguments = arguments[1:]
    if len(arguments) < 2:
        sys.exit(__doc__)
    with open(arguments[0]) as handle:
        schema = json.load(handle)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    failed = 0
    for path in arguments[1:]:
        errors = sorted(validator.iter_errors(load(path)), key=lambda error: list(error.path))
        if expect_invalid:
            if errors:
                print(f"{path}: refused: {errors[0].message}")
            else:
                print(f"{path}: accepted, but it should break the schema")
                failed += 1
            continue
        for error in errors:
            location = "/".join(str(part) for part in error.absolute_path) or "(root)"
            print(f"{path}: {location}: {error.message}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
