#!/usr/bin/env python3
"""The README's fork-join example, as a C file (meson builds and runs it):

    readme_example.py README.md OUT.c

The example is the first ```c block that includes <weft.h> and defines
main: what a newcomer copies first must compile (with the project's
warnings as errors) and run. Exits 1 when the README has no such block."""
import re
import sys


def main():
    readme, out = sys.argv[1], sys.argv[2]
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    for block in re.findall(r"```c\n(.*?)```", text, re.S):
        if "#include <weft.h>" in block and "int main(" in block:
            with open(out, "w", encoding="utf-8") as f:
                f.write("/* generated from README.md by "
                        "test/readme_example.py */\n" + block)
            return 0
    print("readme_example.py: no C block with <weft.h> and main() in "
          + readme, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
