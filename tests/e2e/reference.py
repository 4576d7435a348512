"""An independent reference for the stats API: plain SQL over the raw
export, with none of the worker's code. Reads the export's NDJSON on stdin
and a JSON query on argv[1]; prints the numbers the stats API must give.

Query: {"tz": "Europe/Berlin", "from": "YYYY-MM-DD", "to": "YYYY-MM-DD",
        "goals": [{"name", "event"} | {"name", "page"}], "currency": "USD",
        "filters": [[op, dim, [values]]]}

The only Python besides SQL turns each row's time into its local day and
hour (SQLite has no time zones) and parses the page path from the URL.
"""
import json
import sqlite3
import sys
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

GAP_MS = 30 * 60 * 1000
ENGAGED_MS = 10_000
PAGEVIEWS = ("$pageview", "$mp_web_page_view")
NOT_INTERACTIVE = ("$engagement", "$404", "$identify", "$create_alias", "$merge")
VISIT_DIMS = {
    "entry": "entry", "exit": "exit", "hostname": "hostname", "source": "source", "channel": "channel",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "utm_term": "utm_term", "utm_content": "utm_content", "country": "country", "region": "region",
    "city": "city", "browser": "browser", "browser_version": "browser_version", "os": "os", "device": "device",
}


def main():
    q = json.loads(sys.argv[1])
    tz = ZoneInfo(q["tz"])
    db = sqlite3.connect(":memory:")
    db.execute(
        """CREATE TABLE ev (insert_id TEXT, event TEXT, visitor TEXT, time_ms INTEGER, local_day TEXT,
           hour_ms INTEGER, path TEXT, web INTEGER, pageview INTEGER, interactive INTEGER, engaged INTEGER,
           href TEXT, props TEXT, revenue INTEGER, hostname TEXT, source TEXT, channel TEXT, utm_source TEXT,
           utm_medium TEXT, utm_campaign TEXT, utm_term TEXT, utm_content TEXT, country TEXT, region TEXT,
           city TEXT, browser TEXT, browser_version TEXT, os TEXT, device TEXT)"""
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        row = json.loads(line)
        p = row["properties"]
        t = int(row["cursor"].split(":")[0])
        local = datetime.fromtimestamp(t // 1000, tz)
        hour_ms = hour_of(t, tz)
        url = p.get("$current_url")
        parts = urlsplit(url) if isinstance(url, str) and url.startswith("http") else None
        path = None
        if parts:
            path = parts.path or "/"
            if parts.fragment.startswith("/"):
                route = parts.fragment.split("?")[0]
                path = f"/#{route}" if path == "/" else f"{path.rstrip('/')}#{route}"
        name = row["event"]
        engaged = 0
        if name == "$engagement" and isinstance(p.get("engaged_ms"), (int, float)):
            engaged = int(min(max(p["engaged_ms"], 0), 86_400_000))
        revenue = 0
        rev = p.get("$revenue")
        if isinstance(rev, dict) and str(rev.get("currency", "")).upper() == q.get("currency", "USD"):
            revenue = round(float(rev["amount"]) * 1_000_000)
        version = ""
        if p.get("$browser"):
            version = p["$browser"] + (" " + str(p["$browser_version"]) if p.get("$browser_version") else "")
        db.execute(
            "INSERT INTO ev VALUES (" + ",".join("?" * 29) + ")",
            (
                p["$insert_id"], name, p.get("$device_id") or p["distinct_id"] or None, t, local.date().isoformat(),
                hour_ms, path, 1 if parts else 0, 1 if name in PAGEVIEWS else 0,
                0 if name in PAGEVIEWS or name in NOT_INTERACTIVE else 1, engaged, p.get("href"),
                json.dumps(p), revenue, p.get("$host"), p.get("$source"), p.get("$channel"), p.get("utm_source"),
                p.get("utm_medium"), p.get("utm_campaign"), p.get("utm_term"), p.get("utm_content"),
                p.get("mp_country_code"), p.get("$region"), p.get("$city"), p.get("$browser"), version,
                p.get("$os"), p.get("$device_type"),
            ),
        )
    # Visits: cut each visitor's web events at every gap of 30 minutes.
    db.executescript(
        f"""
        CREATE TABLE cut AS SELECT *,
          SUM(CASE WHEN gap IS NULL OR gap >= {GAP_MS} THEN 1 ELSE 0 END)
            OVER (PARTITION BY visitor ORDER BY time_ms, insert_id ROWS UNBOUNDED PRECEDING) AS vno
        FROM (SELECT *, time_ms - LAG(time_ms) OVER (PARTITION BY visitor ORDER BY time_ms, insert_id) AS gap
              FROM ev WHERE web = 1);
        CREATE TABLE visits AS SELECT visitor, vno, MIN(time_ms) AS start_ms, MAX(time_ms) AS last_ms,
          SUM(pageview) AS pageviews, COUNT(*) AS events,
          CASE WHEN SUM(pageview) = 1 AND MAX(interactive) = 0 AND SUM(engaged) < {ENGAGED_MS} THEN 1 ELSE 0 END AS bounced
        FROM cut GROUP BY visitor, vno;
        """
    )
    first = "SELECT {col} FROM cut c WHERE c.visitor = v.visitor AND c.vno = v.vno {where} ORDER BY time_ms {order}, insert_id {order} LIMIT 1"
    cols = ["hostname", "source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
            "country", "region", "city", "browser", "browser_version", "os", "device"]
    for col in cols:
        db.execute(f"ALTER TABLE visits ADD COLUMN {col} TEXT")
        db.execute(f"UPDATE visits AS v SET {col} = ({first.format(col=col, where='', order='ASC')})")
    for col, order in (("entry", "ASC"), ("exit", "DESC")):
        db.execute(f"ALTER TABLE visits ADD COLUMN {col} TEXT")
        db.execute(f"UPDATE visits AS v SET {col} = ({first.format(col='path', where='AND c.pageview = 1', order=order)})")
    db.execute("ALTER TABLE cut ADD COLUMN visit_start INTEGER")
    db.execute("UPDATE cut SET visit_start = (SELECT start_ms FROM visits v WHERE v.visitor = cut.visitor AND v.vno = cut.vno)")

    start, end = day_start(q["from"], tz), day_start(next_day(q["to"]), tz)
    goals = q.get("goals", [])

    def event_expr(dim):
        if dim == "page":
            return "(CASE WHEN e.pageview = 1 THEN e.path END)"
        if dim == "event":
            return "e.event"
        if dim == "outbound":
            return "(CASE WHEN e.event = '$outbound_link' THEN e.href END)"
        if dim == "download":
            return "(CASE WHEN e.event = '$file_download' THEN e.href END)"
        return None

    def goal_cond(goal, params):
        if "event" in goal:
            params.append(goal["event"])
            return "e.event = ?"
        params.append(goal["page"])
        return "e.pageview = 1 AND matches_goal(e.path, ?)"

    db.create_function("matches_goal", 2, lambda path, pattern: 1 if path and glob(pattern, path) else 0)

    visit_conds, event_conds, params_v, params_e = [], [], [], []
    for op, dim, values in q.get("filters", []):
        values = values if isinstance(values, list) else [values]
        if dim in VISIT_DIMS:
            expr, conds, params = f"COALESCE(v.{VISIT_DIMS[dim]}, '')", visit_conds, params_v
        elif dim == "goal":
            params_e_local = []
            ors = [goal_cond(g, params_e_local) for g in goals if g["name"] in values] or ["0"]
            cond = "(" + " OR ".join(ors) + ")"
            event_conds.append(f"NOT {cond}" if op == "is_not" else cond)
            params_e.extend(params_e_local)
            continue
        else:
            expr, conds, params = f"COALESCE({event_expr(dim)}, '')", event_conds, params_e
        if op == "contains":
            conds.append("(" + " OR ".join(f"instr(lower({expr}), lower(?)) > 0" for _ in values) + ")")
        else:
            cond = f"{expr} IN ({','.join('?' * len(values))})"
            conds.append(f"NOT ({cond})" if op == "is_not" else cond)
        params.extend(values)

    # Visits of the range kept by the filters; events of the range kept by them.
    v_where = " AND ".join(["v.start_ms >= ? AND v.start_ms < ?"] + visit_conds)
    v_params = [start, end] + params_v
    if event_conds:
        v_where += " AND EXISTS (SELECT 1 FROM cut c JOIN ev e ON e.insert_id = c.insert_id AND e.time_ms = c.time_ms " \
                   "AND e.event = c.event WHERE c.visitor = v.visitor AND c.vno = v.vno AND " + " AND ".join(event_conds) + ")"
        v_params += params_e
    e_where = " AND ".join(["e.time_ms >= ? AND e.time_ms < ?"] + event_conds)
    e_params = [start, end] + params_e
    if visit_conds:
        e_where += " AND EXISTS (SELECT 1 FROM cut c JOIN visits v ON v.visitor = c.visitor AND v.vno = c.vno " \
                   "WHERE c.insert_id = e.insert_id AND c.time_ms = e.time_ms AND c.event = e.event AND " + " AND ".join(visit_conds) + ")"
        e_params += params_v
    db.execute(f"CREATE TABLE fv AS SELECT v.* FROM visits v WHERE {v_where}", v_params)
    db.execute(f"CREATE TABLE fe AS SELECT e.* FROM ev e WHERE {e_where}", e_params)

    one = lambda sql, *a: db.execute(sql, a).fetchone()
    totals = {
        "visitors": one("SELECT COUNT(DISTINCT visitor) FROM fe")[0],
        "visits": one("SELECT COUNT(*) FROM fv")[0],
        "pageviews": one("SELECT COUNT(*) FROM fe WHERE pageview = 1")[0],
        "events": one("SELECT COUNT(*) FROM fe")[0],
        "bounces": one("SELECT COALESCE(SUM(bounced), 0) FROM fv")[0],
        "duration_ms": one("SELECT COALESCE(SUM(last_ms - start_ms), 0) FROM fv")[0],
        "revenue_micros": one("SELECT COALESCE(SUM(revenue), 0) FROM fe")[0],
    }
    single_day = q["from"] == q["to"]
    bucket = "hour_ms" if single_day else "local_day"
    series = {}
    for b, visitors, pageviews, events in db.execute(
        f"SELECT {bucket}, COUNT(DISTINCT visitor), SUM(pageview), COUNT(*) FROM fe GROUP BY 1"
    ):
        series[str(b)] = {"visitors": visitors, "pageviews": pageviews, "events": events, "visits": 0}
    db.create_function("local_bucket", 1, lambda t: str(hour_of(t, tz)) if single_day else local_day(t, tz))
    for b, visits in db.execute("SELECT local_bucket(start_ms), COUNT(*) FROM fv GROUP BY 1"):
        series.setdefault(b, {"visitors": 0, "pageviews": 0, "events": 0, "visits": 0})["visits"] = visits

    breakdowns = {}
    for dim, col in VISIT_DIMS.items():
        rows = db.execute(
            f"SELECT COALESCE({col}, ''), COUNT(DISTINCT visitor), COUNT(*), SUM(pageviews), SUM(bounced), "
            f"SUM(last_ms - start_ms) FROM fv WHERE ({col} IS NOT NULL OR '{dim}' NOT IN ('entry', 'exit')) GROUP BY 1"
        )
        breakdowns[dim] = {
            r[0]: {"visitors": r[1], "visits": r[2], "pageviews": r[3], "bounces": r[4], "duration_ms": r[5]}
            for r in rows
        }
    for dim in ("page", "event", "outbound", "download"):
        expr = event_expr(dim)
        rows = db.execute(
            f"SELECT {expr}, COUNT(DISTINCT visitor), SUM(pageview), COUNT(*) FROM fe e WHERE {expr} IS NOT NULL GROUP BY 1"
        )
        breakdowns[dim] = {r[0]: {"visitors": r[1], "pageviews": r[2], "events": r[3]} for r in rows}
    breakdowns["goal"] = {}
    for g in goals:
        params = []
        cond = goal_cond(g, params)
        visitors, events, revenue = one(
            f"SELECT COUNT(DISTINCT visitor), COUNT(*), COALESCE(SUM(revenue), 0) FROM fe e WHERE {cond}", *params
        )
        if events:
            breakdowns["goal"][g["name"]] = {"visitors": visitors, "events": events, "revenue_micros": revenue}
    print(json.dumps({"totals": totals, "series": series, "breakdowns": breakdowns}))


def glob(pattern, text):
    if not pattern:
        return not text
    if pattern.startswith("**"):
        return any(glob(pattern[2:], text[i:]) for i in range(len(text) + 1))
    if pattern[0] == "*":
        seg = text.find("/")
        seg = len(text) if seg < 0 else seg
        return any(glob(pattern[1:], text[i:]) for i in range(seg + 1))
    return bool(text) and text[0] == pattern[0] and glob(pattern[1:], text[1:])


def next_day(d):
    return (date.fromisoformat(d) + timedelta(days=1)).isoformat()


def day_start(d, tz):
    return int(datetime.combine(date.fromisoformat(d), datetime.min.time(), tz).timestamp() * 1000)


def local_day(t, tz):
    return datetime.fromtimestamp(t // 1000, tz).date().isoformat()


def hour_of(t, tz):
    local = datetime.fromtimestamp(t // 1000, tz)
    return t - ((local.minute * 60 + local.second) * 1000 + t % 1000)


if __name__ == "__main__":
    main()
