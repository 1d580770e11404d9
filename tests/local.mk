# Test fragments, one per area.
include tests/unit/core.mk
include tests/unit/listing.mk
include tests/unit/s3.mk
include tests/unit/cache.mk
include tests/integration/local.mk
include tests/integration/core.mk
include tests/kmod/local.mk
include tests/integration/preload.mk
include tests/unit/fault.mk
