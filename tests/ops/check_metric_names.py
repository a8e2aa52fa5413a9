#!/usr/bin/env python3
"""Checks the ops files in deploy/ against the metrics the broker really exports.

- deploy/grafana/sluice-dashboard.json is valid JSON, a dashboard of schemaVersion 36 or later
  with the templated data source DS_PROMETHEUS (used by every panel and query) and an
  `instance` variable, and unique panel ids;
- every metric name in the dashboard's queries and variables, in the `expr` of the alert rules
  and in the input series of the rule tests exists in broker/src/admin/metrics_page.cpp (histogram
  families with their _bucket, _sum and _count series), or is one Prometheus makes itself (`up`);
- every alert rule has a severity label and summary and description annotations;
- with --promtool PATH, the dashboard's queries (Grafana variables replaced) parse as PromQL:
  they are written to a temporary rules file for `promtool check rules`.

Python 3 standard library only. Exit status 0 when everything holds, 1 otherwise.
Usage: check_metric_names.py [--root REPO] [--promtool PATH]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# Series Prometheus itself adds to every scrape target.
PROMETHEUS_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}

# PromQL words that look like identifiers but are not metric names.
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}

IDENT = re.compile(r"(?<![\w.:$])[A-Za-z_:][A-Za-z0-9_:]*")


def exported_metrics(source_text):
    """Every series name metrics_page.cpp can print."""
    names = set(re.findall(r'"(sluice_[a-z0-9_]+)"', source_text))
    for histogram in re.findall(r'\.histogram\(\s*"(sluice_[a-z0-9_]+)"', source_text):
        # A histogram's family name is no series of its own: only these three are.
        names.discard(histogram)
        names.update(histogram + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def strip_promql(expr):
    """The expression without strings, label matchers, ranges, grouping labels and variables."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\$\{[^}]*\}|\$\w+", " ", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    return expr


def metric_names(expr):
    """Metric names an expression selects: identifiers that are neither functions nor keywords."""
    names = set()
    stripped = strip_promql(expr)
    for match in IDENT.finditer(stripped):
        word = match.group(0)
        rest = stripped[match.end():].lstrip()
        if rest.startswith("("):  # a function call or aggregation
            continue
        if word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def series_name(selector):
    """The metric name of a promtool input series such as 'up{job="x"}'."""
    match = re.match(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)", selector)
    if match:
        return match.group(1)
    match = re.search(r'__name__\s*=\s*"([^"]+)"', selector)
    return match.group(1) if match else None


def yaml_scalar(lines, i, value):
    """The scalar of a `key: value` YAML line: inline (quotes removed) or a block (| or >)."""
    value = value.strip()
    if value and value[0] in "|>":
        indent_of_key = len(lines[i]) - len(lines[i].lstrip())
        block = []
        for line in lines[i + 1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent_of_key:
                break
            block.append(line.strip())
        return " ".join(part for part in block if part)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner.replace("''", "'") if value[0] == "'" else inner.replace('\\"', '"')
    return re.sub(r"\s+#.*$", "", value)


def yaml_values(text, key):
    """(line number, value) of every `key:` in a YAML file (also as a list item: `- key:`)."""
    lines = text.splitlines()
    found = []
    pattern = re.compile(r"^\s*(?:-\s+)?" + re.escape(key) + r":(.*)$")
    for i, line in enumerate(lines):
        match = pattern.match(line)
        if match:
            found.append((i + 1, yaml_scalar(lines, i, match.group(1))))
    return found


def alert_blocks(text):
    """(line number, name, text) of each `- alert:` rule up to the next rule."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^\s*-\s+(alert|record):", line)]
    blocks = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        match = re.match(r"^\s*-\s+alert:\s*(\S+)", lines[start])
        if match:
            blocks.append((start + 1, match.group(1), "\n".join(lines[start:end])))
    return blocks


def dashboard_queries(dashboard, errors):
    """(where, expr) of every query of the dashboard; checks its data sources on the way."""
    queries = []

    def check_datasource(where, datasource):
        uid = datasource.get("uid") if isinstance(datasource, dict) else datasource
        if uid != "${DS_PROMETHEUS}":
            errors.append(f"{where}: datasource is {datasource!r}, expected uid ${{DS_PROMETHEUS}}")

    def walk_panels(panels):
        for panel in panels:
            where = f"panel {panel.get('id')} {panel.get('title')!r}"
            if panel.get("type") != "row":
                check_datasource(where, panel.get("datasource"))
            for target in panel.get("targets", []):
                check_datasource(f"{where} target {target.get('refId')}", target.get("datasource"))
                if "expr" in target:
                    queries.append((f"{where} target {target.get('refId')}", target["expr"]))
            walk_panels(panel.get("panels", []))

    walk_panels(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            where = f"variable {variable.get('name')}"
            check_datasource(where, variable.get("datasource"))
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query", "")
            match = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query or "")
            queries.append((where, match.group(1) if match else query))
    return queries


def check_dashboard(path, errors):
    try:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f"{path}: not valid JSON: {e}")
        return None
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        errors.append(f"{path}: schemaVersion {dashboard.get('schemaVersion')!r}, need 36 or later")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append(f"{path}: no templated Prometheus data source variable DS_PROMETHEUS")
    if "instance" not in variables:
        errors.append(f"{path}: no `instance` variable")
    ids = []

    def collect(panels):
        for panel in panels:
            ids.append(panel.get("id"))
            collect(panel.get("panels", []))

    collect(dashboard.get("panels", []))
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if duplicates:
        errors.append(f"{path}: duplicate panel ids {duplicates}")
    return dashboard_queries(dashboard, errors)


def promql_parses(promtool, queries, errors):
    """Runs `promtool check rules` over the queries as recording rules."""
    def grafana_free(expr):
        expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
        return re.sub(r"\$\{[^}]*\}|\$\w+", ".*", expr)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-queries.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for n, (_, expr) in enumerate(queries):
                f.write(f"      - record: dashboard_query_{n}\n")
                f.write(f"        expr: {json.dumps(grafana_free(expr))}\n")
        result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            named = sorted({int(n) for n in re.findall(r"dashboard_query_(\d+)", output)})
            errors.append("dashboard queries do not all parse as PromQL (promtool check rules):\n"
                          + output.strip() + "\n"
                          + "\n".join(f"  dashboard_query_{n} is {queries[n][0]}: {queries[n][1]}"
                                      for n in named if n < len(queries)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")),
                        help="repository root (default: two levels above this script)")
    parser.add_argument("--promtool", help="also check that the dashboard's queries parse")
    args = parser.parse_args()

    source = os.path.join(args.root, "broker", "src", "admin", "metrics_page.cpp")
    dashboard_path = os.path.join(args.root, "deploy", "grafana", "sluice-dashboard.json")
    rules_path = os.path.join(args.root, "deploy", "prometheus", "sluice-alerts.yml")
    tests_path = os.path.join(args.root, "deploy", "prometheus", "sluice-alerts.test.yml")

    errors = []
    with open(source, encoding="utf-8") as f:
        exported = exported_metrics(f.read())
    if len(exported) < 10:
        errors.append(f"{source}: found only {sorted(exported)}; has the file's form changed?")
    known = exported | PROMETHEUS_SERIES

    used = []  # (where, metric)
    queries = check_dashboard(dashboard_path, errors) or []
    for where, expr in queries:
        names = metric_names(expr)
        if not names:
            errors.append(f"{dashboard_path}: {where}: no metric name found in {expr!r}")
        used += [(f"{dashboard_path}: {where}", name) for name in names]

    with open(rules_path, encoding="utf-8") as f:
        rules_text = f.read()
    exprs = yaml_values(rules_text, "expr")
    if not exprs:
        errors.append(f"{rules_path}: no expr found")
    for line, expr in exprs:
        used += [(f"{rules_path}:{line}", name) for name in metric_names(expr)]
    blocks = alert_blocks(rules_text)
    for line, name, block in blocks:
        for needed in ("severity", "summary", "description"):
            if not re.search(r"^\s*" + needed + r":\s*\S", block, re.M):
                errors.append(f"{rules_path}:{line}: alert {name} has no {needed}")

    with open(tests_path, encoding="utf-8") as f:
        tests_text = f.read()
    for line, selector in yaml_values(tests_text, "series"):
        name = series_name(selector)
        if name is None:
            errors.append(f"{tests_path}:{line}: no metric name in series {selector!r}")
        else:
            used.append((f"{tests_path}:{line}", name))
    tested = {value for _, value in yaml_values(tests_text, "alertname")}
    for line, name, _ in blocks:
        if name not in tested:
            errors.append(f"{rules_path}:{line}: alert {name} has no test in {tests_path}")

    for where, name in used:
        if name not in known:
            errors.append(f"{where}: metric {name} is not exported by {source}")

    if args.promtool and queries:
        promql_parses(args.promtool, queries, errors)

    if errors:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"check_metric_names: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    distinct = sorted({name for _, name in used})
    print(f"check_metric_names: ok: {len(queries)} dashboard queries, {len(exprs)} rule "
          f"expressions, {len(blocks)} alerts; {len(distinct)} metric names used, all exported "
          f"({len(exported)} in metrics_page.cpp)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
