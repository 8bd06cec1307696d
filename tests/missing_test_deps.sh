#!/bin/sh
# Stands in for the suites when configure found no Check or libcurl, so that
# `make check` fails loudly instead of passing with nothing run.
echo "FAIL: Check and libcurl are needed for make check (see README.md)"
exit 1
