# Integration tests of the filesystem core's consistency rules.
TESTS += tests/integration/change.sh
dist_check_SCRIPTS += tests/integration/change.sh
