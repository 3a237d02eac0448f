"""Parse HCL files with python-hcl2 (a real HCL2 parser, not statebucket's own reader) and
print them as one JSON object, path -> parsed body. Exits 1 on the first file that does not
parse, naming it.

Usage: python parse_hcl.py FILE...
"""

import json
import sys

import hcl2


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    parsed = {}
    for path in sys.argv[1:]:
        try:
            with open(path) as handle:
                parsed[path] = hcl2.load(handle)
        except Exception as error:  # noqa: BLE001 - any parse failure is the answer
            print(f"{path}: {error}", file=sys.stderr)
            return 1
    json.dump(parsed, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
