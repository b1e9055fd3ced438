"""``kavka features describe|upgrade|downgrade``: the cluster's feature flags (KIP-584), like
``kafka-features.sh``.

``describe`` asks ApiVersions (v4 where the broker has it, so features whose supported
minimum is 0 show too) and prints, per feature, the broker's supported range and the
cluster's finalized level (0: not finalized), with the epoch of the last change;
metadata.version levels also show Kafka's release-version name.  ``upgrade`` and
``downgrade`` send UpdateFeatures for ``--feature NAME=LEVEL`` (repeatable): all or none;
``downgrade --unsafe`` asks for a lossy downgrade, ``--dry-run`` lets the broker validate only.
"""

from __future__ import annotations

from kavka.cli.common import CliError, bootstrap_parent, parse_pairs, print_table, session
from kavka.client_session import API_VERSIONS, UPDATE_FEATURES, check
from kavka.metadata.features import METADATA_VERSION, METADATA_VERSIONS, UpgradeType


def add_parser(commands) -> None:
    parent = bootstrap_parent()
    p = commands.add_parser("features", help="show or change the cluster's feature flags",
                            description="Show or change the cluster's finalized feature levels (KIP-584).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("describe", parents=[parent], help="supported ranges and finalized levels")
    for action, text in (("upgrade", "raise finalized levels"), ("downgrade", "lower finalized levels")):
        a = actions.add_parser(action, parents=[parent], help=text)
        a.add_argument("--feature", action="append", default=[], metavar="NAME=LEVEL", required=True,
                       help="a feature and its new level, e.g. group.version=1 (repeatable)")
        a.add_argument("--dry-run", action="store_true", help="let the broker validate, change nothing")
        if action == "downgrade":
            a.add_argument("--unsafe", action="store_true", help="allow a lossy downgrade (UNSAFE_DOWNGRADE)")


def run(args) -> int:
    with session(args) as s:
        if args.action == "describe":
            _describe(s)
        else:
            _update(s, args)
    return 0


def _describe(s) -> None:
    q = s.builder(API_VERSIONS)
    response = s.request(q.ApiVersionsRequest(client_software_name="kavka-cli", client_software_version="1"))
    check(response.error_code, None, "the broker refused ApiVersions")
    finalized = {f.name: f.max_version_level for f in response.finalized_features}
    rows = [(f.name, _level(f.name, f.min_version), _level(f.name, f.max_version),
             _level(f.name, finalized.get(f.name, 0))) for f in sorted(response.supported_features,
                                                                      key=lambda f: f.name)]
    if not rows:
        raise CliError(f"the broker at {s.bootstrap} reports no feature flags")
    print_table(rows, ("FEATURE", "SUPPORTED-MIN", "SUPPORTED-MAX", "FINALIZED"))
    epoch = response.finalized_features_epoch
    print(f"Finalized features epoch: {epoch if epoch >= 0 else 'unknown'}")


def _level(feature: str, level: int) -> str:
    name = METADATA_VERSIONS.get(level, (None,))[0] if feature == METADATA_VERSION else None
    return f"{level} ({name})" if name else str(level)


def _update(s, args) -> None:
    levels = []
    for name, text in parse_pairs(args.feature, "--feature"):
        try:
            levels.append((name, int(text)))
        except ValueError:
            raise CliError(f"--feature {name}: the level must be a whole number, got {text!r}") from None
    if args.action == "upgrade":
        kind = UpgradeType.UPGRADE
    else:
        kind = UpgradeType.UNSAFE_DOWNGRADE if args.unsafe else UpgradeType.SAFE_DOWNGRADE
    q = s.builder(UPDATE_FEATURES)
    response = s.request(q.UpdateFeaturesRequest(
        feature_updates=tuple(q.FeatureUpdateKey(feature=name, max_version_level=level, upgrade_type=kind,
                                                 allow_downgrade=kind != UpgradeType.UPGRADE)
                              for name, level in levels),
        validate_only=args.dry_run))
    check(response.error_code, response.error_message, f"cannot {args.action} the features")
    for result in getattr(response, "results", ()):
        check(result.error_code, result.error_message, f"cannot {args.action} {result.feature}")
    done = "can be" if args.dry_run else "was"
    for name, level in levels:
        print(f"{name} {done} {args.action}d to {level}.")
