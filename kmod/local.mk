# The kernel module: built by its own target, never by `all`.
#   make kmod   builds kmod/build-<version>/cofault.ko in the build directory
#               for every kernel whose headers are in /lib/modules/*/build.
# kmod/Makefile does the work and can also be used directly (see there).
EXTRA_DIST += kmod/cofault.c kmod/compat.h kmod/Kbuild kmod/Makefile \
	kmod/dkms.conf

kmod:
	@found=; for kdir in /lib/modules/*/build; do \
		test -d "$$kdir" || continue; found=1; \
		kver=$$(basename "$$(dirname "$$kdir")"); \
		echo "  KMOD     $$kver"; \
		$(MAKE) -C "$(abs_top_srcdir)/kmod" KDIR="$$kdir" \
			BUILD="$(abs_top_builddir)/kmod/build-$$kver" || exit 1; \
	done; \
	test -n "$$found" || { echo "kmod: no kernel headers in /lib/modules/*/build" >&2; exit 1; }

kmod-clean:
	rm -rf $(abs_top_builddir)/kmod/build-*

clean-local: kmod-clean

.PHONY: kmod kmod-clean
