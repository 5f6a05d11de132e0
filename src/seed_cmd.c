/* gradeq-admin seed's options and report, over gradeq_seed_run(). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/cli.h"
#include "gradeq/seed.h"

int gradeq_seed_main(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
		     bool json)
{
	static const struct option opts[] = {
		{"courses", required_argument, NULL, 'C'},
		{"learners", required_argument, NULL, 'l'},
		{"seed", required_argument, NULL, 's'},
		{"prefix", required_argument, NULL, 'p'},
		{"replace", no_argument, NULL, 'R'},
		{NULL, 0, NULL, 0},
	};
	struct gradeq_seed_opts o;
	struct gradeq_seed_stats stats;
	const char *classes[64], *courses = NULL, *learners = NULL, *seed = NULL, *prefix = NULL;
	char *list = NULL, *save = NULL;
	double rate;
	long v;
	int opt, rc, status = 2, bad = 0;

	memset(&o, 0, sizeof(o));
	o.learners = 2000;
	o.seed = 42;
	optind = 1;
	while (!bad && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'C': bad = gradeq_cli_once(cli, "--courses", &courses, optarg); break;
		case 'l': bad = gradeq_cli_once(cli, "--learners", &learners, optarg); break;
		case 's': bad = gradeq_cli_once(cli, "--seed", &seed, optarg); break;
		case 'p': bad = gradeq_cli_once(cli, "--prefix", &prefix, optarg); break;
		case 'R': o.replace = true; break;
		default: bad = 2; break;
		}
	}
	if (bad)
		goto out;
	if (optind < argc) {
		gradeq_cli_error(cli, "seed: unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (learners) {
		if (gradeq_cli_parse_long(cli, "--learners", learners, 0, GRADEQ_SEED_MAX_LEARNERS,
					  &v))
			goto out;
		o.learners = (int)v;
	}
	if (seed) {
		if (gradeq_cli_parse_long(cli, "--seed", seed, 0, 0x7fffffffL, &v))
			goto out;
		o.seed = (uint64_t)v;
	}
	o.prefix = prefix;
	status = 1;
	list = strdup(courses ? courses : "small,medium,large");
	if (!list)
		goto out;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!gradeq_seed_class_known(t)) {
			gradeq_cli_error(
				cli, "seed: unknown course class '%s' (small, medium, large)", t);
			status = 2;
			goto out;
		}
		if (o.nclasses < 64)
			classes[o.nclasses++] = t;
	}
	o.classes = classes;
	rc = gradeq_seed_run(st, &o, &stats);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	rate = stats.copy_seconds > 0 ? (double)stats.score_rows / stats.copy_seconds : 0;
	if (json)
		printf("{\"courses\":%d,\"blocks\":%ld,\"enrollments\":%ld,\"score_rows\":%ld,"
		       "\"problem_rows\":%ld,\"seconds\":%.3f,\"copy_seconds\":%.3f,"
		       "\"copy_rows_per_s\":%.0f}\n",
		       stats.courses, stats.blocks, stats.enrollments, stats.score_rows,
		       stats.problem_rows, stats.seconds, stats.copy_seconds, rate);
	else
		printf("seeded %d courses: %ld blocks, %ld enrollments, %ld module rows (%ld of"
		       " problems) in %.1f s; module rows COPYed at %.0f rows/s\n",
		       stats.courses, stats.blocks, stats.enrollments, stats.score_rows,
		       stats.problem_rows, stats.seconds, rate);
	status = 0;
out:
	free(list);
	return status;
}
