/* sweeptable.h - the success-rate-versus-epsilon table, printed the same
 * way by `advex attack --images A:B --eps ...` as it goes and by `advex
 * runs sweep` from the log afterwards (text, CSV or JSON lines), so that
 * the two can be compared line for line. */
#ifndef ADVEX_SWEEPTABLE_H
#define ADVEX_SWEEPTABLE_H

#include <jansson.h>

struct sweeptable {
	int json, csv;			/* the format; neither: text */
	const char *csv_key_head;	/* CSV: columns put before the table's
					   ("model,attack,"), NULL: none */
	const char *csv_key;		/* CSV: their values for these rows */
	json_t *json_key;		/* JSON: an object whose keys go before
					   each row's (borrowed), NULL: none */
};

/* The clean accuracy line and the column names (text), or the CSV
 * header; nothing for JSON. */
void sweeptable_head(const struct sweeptable *t, int clean_ok, int labelled,
		     int n_skipped);
/* One epsilon's row. skipped: the n_skipped images not attacked (their
 * label is the target). */
void sweeptable_row(const struct sweeptable *t, double eps, const char *eps_text,
		    int attempted, int succeeded, const int *skipped,
		    int n_skipped, double clean_acc);

#endif
