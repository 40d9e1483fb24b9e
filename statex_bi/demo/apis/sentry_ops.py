"""The simulated app's operations on the Sentry sandbox (`statex_bi.demo.ops`): queue and db spans for the
aggregate span queries of sentry_perf, and user feedback as feedback issues.

What it speaks (../shared wave3-facts section 2; docs.sentry.io queues module and Queries insights):
- `queue.publish` and `queue.process` spans (`span.op:queue.publish` / `span.op:queue.process`), grouped by
  `messaging.destination.name`; process spans carry `messaging.message.receive.latency` (ms) and
  `messaging.message.retry.count`, aggregated like any number (`p95(...)`, `sum(...)`, `count_if(...)`).
- `db` spans selected by `span.category:db` (plus `has:sentry.normalized_description`, which every
  sandbox db span has), grouped by `sentry.normalized_description`, `span.group` and `transaction`.
- Feedback: `GET /api/0/organizations/{org}/issues/?query=issue.category:feedback`, one issue per
  submission (`issueCategory` and `issueType` `feedback`), the widget's fields in `metadata` (`message`,
  `name`, `contact_email`, `source`) and the page it was sent from as the issue's `culprit` [assumed: the
  feedback issue's exact metadata keys are not in the public docs].
"""

from __future__ import annotations

import numpy as np

from statex_bi.demo.ops import SITE, Feedback, OpsData, span_group

QUEUE_FIELD = "messaging.destination.name"


def queue_columns(ops: OpsData, op: str, first: float, stop: float
                  ) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """(columns, labels) of the `queue.publish` or `queue.process` spans starting in [first, stop)."""
    jobs = ops.window_jobs(first, stop)
    if op == "queue.publish":
        n = len(jobs.publish_start)
        columns = {"start": jobs.publish_start, QUEUE_FIELD: jobs.publish_queue,
                   "span.duration": np.full(n, 2.0), "_failed": np.zeros(n, dtype=bool)}
    else:
        n = len(jobs.process_start)
        columns = {"start": jobs.process_start, QUEUE_FIELD: jobs.process_queue, "span.duration": jobs.duration_ms,
                   "messaging.message.receive.latency": jobs.receive_latency_ms,
                   "messaging.message.retry.count": jobs.retry_count.astype(np.float64), "_failed": jobs.failed}
    columns["project"] = np.zeros(n, dtype=np.int64)
    return columns, {QUEUE_FIELD: jobs.queues, "project": ("statex-worker",)}


def db_columns(ops: OpsData, first: float, stop: float) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """(columns, labels) of the `db` spans starting in [first, stop): the query's code doubles as its span.group's."""
    queries = ops.window_queries(first, stop)
    n = len(queries.start)
    columns = {"start": queries.start, "sentry.normalized_description": queries.query, "span.group": queries.query,
               "transaction": queries.route, "span.duration": queries.duration_ms,
               "_failed": np.broadcast_to(False, (n,)), "project": np.broadcast_to(np.int8(0), (n,))}  # no memory
    labels = {"sentry.normalized_description": queries.descriptions,
              "span.group": tuple(span_group(d) for d in queries.descriptions), "transaction": queries.routes,
              "project": ("statex-api",)}
    return columns, labels


def _iso(item: Feedback) -> str:
    return item.received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def feedback_issue(item: Feedback, number: int) -> dict:
    """A feedback issue as the issue list returns it."""
    seen = _iso(item)
    metadata = {"title": "User Feedback", "value": item.message, "message": item.message,
                "source": "new_feedback_envelope", "name": item.name, "contact_email": item.email}
    return {
        "id": item.feedback_id, "shortId": f"STATEX-WEB-F{number + 1:X}", "title": "User Feedback",
        "culprit": f"{SITE}{item.page}", "level": "info", "status": "unresolved", "substatus": "new",
        "statusDetails": {}, "firstSeen": seen, "lastSeen": seen, "count": "1", "userCount": 1 if item.email else 0,
        "isUnhandled": False, "platform": "javascript", "issueCategory": "feedback", "issueType": "feedback",
        "type": "generic", "metadata": {k: v for k, v in metadata.items() if v is not None},
        "logger": None, "annotations": [], "assignedTo": None, "hasSeen": False, "isBookmarked": False,
        "isPublic": False, "isSubscribed": False, "numComments": 0, "shareId": None, "subscriptionDetails": None,
        "priority": "medium", "priorityLockedAt": None, "permalink": f"https://statex.sentry.io/feedback/?feedbackSlug="
        f"statex-web:{item.feedback_id}", "project": {"id": "4508114", "name": "statex-web", "slug": "statex-web",
                                                      "platform": "javascript"},
        "filtered": None, "inbox": None, "owners": None, "integrationIssues": [], "sentryAppIssues": [],
        "latestEventHasAttachments": False, "stats": {"24h": []},
        "lifetime": {"count": "1", "userCount": 1 if item.email else 0, "firstSeen": seen, "lastSeen": seen},
    }
