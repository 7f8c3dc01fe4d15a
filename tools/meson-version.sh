#!/bin/sh
# Print weft's version, read from its single source, include/weft/version.h.
sed -n 's/^#define WEFT_VERSION_STRING "\(.*\)"$/\1/p' \
    "$(dirname "$0")/../include/weft/version.h"
