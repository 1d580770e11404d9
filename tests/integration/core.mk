# Integration tests of the filesystem core: consistency rules and the
# persistent chunk cache through real mounts.
core_integration_tests = \
	tests/integration/change.sh \
	tests/integration/tls.sh \
	tests/integration/cache.sh \
	tests/integration/prefetch.sh \
	tests/integration/random-epoch.sh
TESTS += $(core_integration_tests)
dist_check_SCRIPTS += $(core_integration_tests)
