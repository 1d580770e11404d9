# Unit tests of the core (src/common, src/store/http.c, src/fs/data.c).
