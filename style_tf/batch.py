"""`python -m style_tf.batch`: flags -> BatchConfig -> pipeline.run(). Nothing else.

Stylizes a whole data set with the Apache Beam pipeline of `style_tf.pipeline`: flags not
defined here are Beam's pipeline options (`--runner`, `--direct_num_workers`, Dataflow's
`--project`, ...) and go to Beam; one that neither reads is refused. Ends with one line:
stylized, skipped (already done) and failed photos, and images/s. Exit status: 0 done, 1 some
photos failed (listed in <output>/failed.jsonl), 2 user error (one line on stderr, nothing
run).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import sys

from absl import flags

from style_tf import pipeline, stylizer
from style_tf.errors import user_errors_exit_2


def _define_flags() -> None:
    cli.define_flags(pipeline.BatchConfig, stylizer.AdainConfig)


def config_from_flags(f) -> tuple[pipeline.BatchConfig, stylizer.AdainConfig]:
    """(BatchConfig, the engine's settings) from the flags; `--alpha` is BatchConfig's (a value
    or a range), given to the engine per photo."""
    engine = cli.config_from_flags(stylizer.AdainConfig, f, alpha=1.0)
    return cli.config_from_flags(pipeline.BatchConfig, f), engine


@user_errors_exit_2
def main(argv) -> int:
    beam_args = argv[1:]  # What absl left: Beam's flags (`--runner=X` or `--runner X`).
    stray = [a for i, a in enumerate(beam_args) if not a.startswith("-")
             and not (i and beam_args[i - 1].startswith("--") and "=" not in beam_args[i - 1])]
    if stray:
        print(f"error: unexpected arguments {stray} (flags start with --)", file=sys.stderr)
        return 2
    pipeline.quiet_beam()
    config, engine = config_from_flags(flags.FLAGS)
    s = pipeline.run(config, engine, beam_args)
    failed = f", failed {s.failed} (listed in {s.failures})" if s.failed else ""
    print(f"stylized {s.stylized}, skipped {s.skipped} already done{failed}: {s.images_per_s:.2f} "
          f"images/s over {s.seconds:.1f} s ({s.runner}); manifest: {s.manifest}")
    return 1 if s.failed else 0


if __name__ == "__main__":
    cli.run(main, _define_flags, known_only=True)
