/* sweeptable.c - the success rate per epsilon, one format for the live
 * sweep and for the log (see sweeptable.h). */
#include "sweeptable.h"

#include "jsonout.h"

#include <stdio.h>
#include <stdlib.h>

void sweeptable_head(const struct sweeptable *t, int clean_ok, int labelled,
		     int n_skipped)
{
	if (t->csv)
		printf("%seps,eps_text,attempted,succeeded,success_rate,skipped,"
		       "clean_accuracy\n", t->csv_key_head ? t->csv_key_head : "");
	else if (!t->json)
		printf("clean accuracy %.2f%% (%d of %d); %d skipped (true label is "
		       "the target)\n\n%-12s %10s %10s %12s\n",
		       labelled ? 100.0 * clean_ok / labelled : 0.0, clean_ok,
		       labelled, n_skipped, "eps", "attempted", "succeeded",
		       "success rate");
	fflush(stdout);
}

void sweeptable_row(const struct sweeptable *t, double eps, const char *eps_text,
		    int attempted, int succeeded, const int *skipped,
		    int n_skipped, double clean_acc)
{
	double rate = attempted ? (double)succeeded / attempted : 0.0;
	int i;

	if (t->json) {
		json_t *o = t->json_key ? json_deep_copy(t->json_key) : json_object();
		json_t *sk = json_array();
		char *s;

		json_t *row = json_pack("{s:f, s:s, s:i, s:i, s:f, s:i, s:f}", "eps", eps,
					"eps_text", eps_text, "attempted", attempted,
					"succeeded", succeeded, "success_rate", rate,
					"skipped", n_skipped, "clean_accuracy", clean_acc);

		json_object_update(o, row);
		json_decref(row);
		for (i = 0; i < n_skipped; i++)
			json_array_append_new(sk, json_integer(skipped[i]));
		json_object_set_new(o, "skipped_images", sk);
		s = jsonout_dumps(o, JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else if (t->csv) {
		printf("%s%.8g,%s,%d,%d,%.6f,%d,%.6f\n", t->csv_key ? t->csv_key : "",
		       eps, eps_text, attempted, succeeded, rate, n_skipped, clean_acc);
	} else {
		printf("%-12s %10d %10d %11.1f%%\n", eps_text, attempted, succeeded,
		       100 * rate);
	}
	fflush(stdout);
}
