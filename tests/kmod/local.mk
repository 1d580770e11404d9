# (owned by its area)
