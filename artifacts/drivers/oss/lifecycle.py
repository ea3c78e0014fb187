"""Argo's `lifecycleRule` as one rule of ours, merged into the bucket's lifecycle document
beside the rules others set (Argo replaces them all). Pure XML: the driver does the I/O."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from argosy.artifacts.errors import InvalidSpec

LIFECYCLE_RULE_ID = "argosy-artifacts"


def check_days(ia: int | None, expire: int | None) -> None:
    """Refuse what OSS would refuse, with the names the user wrote."""
    for name, days in (("markInfrequentAccessAfterDays", ia), ("markDeletionAfterDays", expire)):
        if days is not None and (not isinstance(days, int) or days <= 0):
            raise InvalidSpec(f"lifecycleRule.{name} must be a positive number of days")
    if ia is not None and expire is not None and ia >= expire:
        raise InvalidSpec(
            "lifecycleRule.markInfrequentAccessAfterDays must be less than markDeletionAfterDays"
        )


def merge_rule(
    current: bytes | None, *, prefix: str, ia: int | None, expire: int | None
) -> bytes | None:
    """The bucket's lifecycle document (`current`, None when it has none) with our rule set,
    or removed when both days are None. None when no rule is left: delete the lifecycle."""
    root = ET.fromstring(current) if current else ET.Element("LifecycleConfiguration")
    for rule in root.findall("Rule"):
        if (rule.findtext("ID") or "").strip() == LIFECYCLE_RULE_ID:
            root.remove(rule)
    if ia is not None or expire is not None:
        root.append(_rule(prefix, ia, expire))
    return ET.tostring(root, encoding="utf-8") if root.findall("Rule") else None


def _rule(prefix: str, ia: int | None, expire: int | None) -> ET.Element:
    rule = ET.Element("Rule")
    for tag, text in (("ID", LIFECYCLE_RULE_ID), ("Prefix", prefix), ("Status", "Enabled")):
        ET.SubElement(rule, tag).text = text
    if expire is not None:
        ET.SubElement(ET.SubElement(rule, "Expiration"), "Days").text = str(expire)
    if ia is not None:
        transition = ET.SubElement(rule, "Transition")
        ET.SubElement(transition, "Days").text = str(ia)
        ET.SubElement(transition, "StorageClass").text = "IA"
    return rule
