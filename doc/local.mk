dist_man_MANS += doc/cofault.1
