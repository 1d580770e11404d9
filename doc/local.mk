dist_man_MANS += doc/cofault.1
EXTRA_DIST += doc/fault-layer.md
