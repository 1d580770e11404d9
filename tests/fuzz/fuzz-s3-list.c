/*
 * libFuzzer target for the S3 XML parsers: whatever an endpoint sends,
 * parsing must end with a page or -EPROTO, never a crash, a leak or a
 * hang. Seeded with tests/data/s3/ by fuzz-s3-list.sh.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/s3-xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_xml_page p;
	struct s3_xml_error e;
	char why[128];
	size_t i;

	if (!s3_xml_parse_list((const char *)data, size, &p, why,
			       sizeof(why))) {
		/* Touch everything a caller would. */
		for (i = 0; i < p.nobjects; i++)
			(void)strlen(p.objects[i].key);
		for (i = 0; i < p.nprefixes; i++)
			(void)strlen(p.prefixes[i]);
		if (p.truncated && !p.next_token)
			__builtin_trap();
		s3_xml_page_free(&p);
	}
	(void)s3_xml_parse_error((const char *)data, size, &e);
	return 0;
}
