"""The simulated infrastructure of Statex: AWS (SES, EC2) and Azure (Azure OpenAI) bills as FOCUS files,
and Cloudflare R2 usage as the GraphQL Analytics API reports it.

    AWS     "FOCUS 1.0 with AWS columns" (x_UsageType) until May 2026, then "FOCUS 1.2 with AWS columns"
            (SkuMeter), daily rows, gzipped CSV per billing period as Data Exports write them. SES
            recipients follow the company's sign-ups and prototype requests plus a monthly newsletter
            (pay-as-you-go, $0.10 per 1,000); two EC2 instances; AWS Activate credits on EC2 for the
            first months; one day's SES usage billed twice and reversed by a Correction row in the
            next billing period; "Usage-based" spelled as real exports do.
    Azure   Microsoft's FOCUS 1.2 export as Parquet, billed in EUR: "Azure AI Services" rows per day and
            meter (model in SkuMeter, "Units" with x_PricingBlockSize 1000) for the Azure tier's billed
            tokens of the AI simulation at EU Data Zone rates, converted at the day's ECB rate; one
            charge reversed by a negative Usage row the next day.
    R2      three buckets (prototypes, site assets, an Infrequent Access archive): storage sampled four
            times a day, operations per day, action and status code (403s, 404s and an unlisted
            action included), GetObject bytes that vary by month (launches, holidays).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from statex_bi.demo.entities import WorldConfig
from statex_bi.pricing import Price, load_catalog

AWS_ACCOUNT = "417305626941"
AZURE_ACCOUNT = "/providers/Microsoft.Billing/billingAccounts/8a3c6c51-statex"
AZURE_SUBSCRIPTION = "3f5b1f0e-7c2d-4a8e-9a51-2d0c8e6b4f10"
R2_ACCOUNT = "5c9f0e8a1b2d4c6e8f0a1b2c3d4e5f60"
AWS_FOCUS_12_FROM = date(2026, 6, 1)  # the month the export was switched to FOCUS 1.2 with AWS columns
SES_USD_PER_RECIPIENT = 0.0001
EC2_USD_PER_HOUR = 0.0416  # t3.medium us-east-1
EC2_INSTANCES = 2
CREDIT_MONTHS = 4  # AWS Activate credits on the first billing periods
CREDIT_USD = 40.0


@dataclass(frozen=True)
class Bucket:
    name: str
    storage_class: str  # Standard | InfrequentAccess
    start_gb: float
    growth_gb_per_day: float
    object_kb: float
    puts_per_day: float
    gets_per_day: float
    egress_gb_per_day: float  # before the month's factor


BUCKETS = (
    Bucket("statex-prototypes", "Standard", 40.0, 0.35, 900.0, 40_000, 180_000, 6.0),
    Bucket("statex-site-assets", "Standard", 12.0, 0.02, 150.0, 2_000, 650_000, 22.0),
    Bucket("statex-archive", "InfrequentAccess", 300.0, 1.2, 50_000.0, 300, 400, 0.2),
)
# Egress factor by calendar month: a launch in March, conference season, a quiet August and December.
EGRESS_SEASON = {1: 0.8, 2: 0.9, 3: 2.4, 4: 1.3, 5: 1.1, 6: 1.4, 7: 1.0, 8: 0.5, 9: 1.2, 10: 1.7, 11: 1.3, 12: 0.6}


@dataclass
class InfraData:
    """The infrastructure side of the simulated company.

    Attributes:
        aws_rows, azure_rows: FOCUS rows (dicts keyed by FOCUS column), by billing period (first day).
        r2_operations: (date, bucket, actionType, actionStatus, responseStatusCode, storageClass) ->
            [requests, responseBytes, responseObjectSize].
        r2_storage: (sampled_at, bucket, storageClass, payloadSize, metadataSize, objectCount, uploadCount).
    """

    aws_rows: dict[date, list[dict]]
    azure_rows: dict[date, list[dict]]
    r2_operations: dict[tuple, list[int]]
    r2_storage: list[tuple]

    def write_focus_files(self, folder: Path) -> list[Path]:
        """Write the AWS export (gzipped CSV per billing period) and the Azure export (Parquet per month)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        written = []
        for period, rows in sorted(self.aws_rows.items()):
            path = folder / "aws" / "statex-focus" / "data" / f"BILLING_PERIOD={period:%Y-%m}" / (
                "statex-focus-00001.csv.gz")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_csv_gz(rows))
            written.append(path)
        for period, rows in sorted(self.azure_rows.items()):
            end = _next_month(period) - timedelta(days=1)
            path = folder / "azure" / "statex-focus-cost" / f"{period:%Y%m%d}-{end:%Y%m%d}" / "part_0_0001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), path)
            written.append(path)
        return written


def _csv_gz(rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return gzip.compress(text.getvalue().encode(), mtime=0)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate_infra(config: WorldConfig, growth, ai, fx) -> InfraData:
    """Simulate the AWS and Azure bills and the R2 usage of every day of the period.

    Args:
        config: the world; randomness from `config.rng("infra")` only.
        growth: sign-ups and prototype requests (they drive e-mail and storage).
        ai: the AI calls (the Azure tier's billed tokens become Azure's bill).
        fx: the ECB rates (Azure bills in EUR).
    """
    rng = config.rng("infra")
    aws = _aws(config, rng, growth)
    azure = _azure(config, rng, ai, fx)
    operations, storage = _r2(config, rng, growth)
    return InfraData(aws, azure, operations, storage)


def _aws_row(day: date, service: str, category: str, code: str, usage_type: str, description: str,
             quantity: float | None, unit: str | None, price: float | None, cost: float, *, charge_category="Usage",
             charge_class: str | None = None, frequency="Usage-based", operation: str = "",
             billing_period: date | None = None) -> dict:
    period = billing_period or day.replace(day=1)
    start = datetime.combine(day, time())
    base = {
        "AvailabilityZone": None, "BilledCost": f"{cost:.10f}", "BillingAccountId": AWS_ACCOUNT,
        "BillingAccountName": "Statex", "BillingCurrency": "USD",
        "BillingPeriodEnd": _stamp(datetime.combine(_next_month(period), time())),
        "BillingPeriodStart": _stamp(datetime.combine(period, time())), "ChargeCategory": charge_category,
        "ChargeClass": charge_class, "ChargeDescription": description, "ChargeFrequency": frequency,
        "ChargePeriodEnd": _stamp(start + timedelta(days=1)), "ChargePeriodStart": _stamp(start),
        "ConsumedQuantity": quantity, "ConsumedUnit": unit, "ContractedCost": f"{cost:.10f}",
        "EffectiveCost": "0" if charge_category == "Usage" else f"{cost:.10f}",
        "InvoiceIssuerName": "Amazon Web Services, Inc.", "ListCost": f"{cost:.10f}" if cost > 0 else "0",
        "ListUnitPrice": price, "PricingCategory": "Standard" if charge_category == "Usage" else None,
        "PricingQuantity": quantity, "PricingUnit": unit, "ProviderName": "AWS", "PublisherName": "AWS",
        "RegionId": "us-east-1", "RegionName": "US East (N. Virginia)", "ResourceId": None,
        "ServiceCategory": category, "ServiceName": service, "SkuId": None, "SubAccountId": AWS_ACCOUNT,
        "SubAccountName": "statex-prod",
    }
    if period >= AWS_FOCUS_12_FROM:
        return {**base, "SkuMeter": usage_type or None, "x_Discounts": None, "x_Operation": operation or None,
                "x_ServiceCode": code, "Tags": "{}"}
    return {**base, "x_CostCategories": "{}", "x_Discounts": None, "x_Operation": operation or None,
            "x_ServiceCode": code, "x_UsageType": usage_type or None}


def _emails(config: WorldConfig, rng: np.random.Generator, growth) -> dict[date, int]:
    """Recipients a day: sign-up and prototype mails, daily digests, a monthly newsletter."""
    signups, requests = growth.customers.per_day(), growth.prototype_requests.per_day()
    emails, customers = {}, 0
    for day in config.days():
        customers += signups[day]
        count = 3 * signups[day] + 6 * requests[day] + int(rng.poisson(1200 * config.scale))
        if day.weekday() == 1 and day.day <= 7:  # newsletter: first Tuesday of the month
            count += customers * 8 + int(rng.integers(5_000, 9_000))
        emails[day] = count
    return emails


def _aws(config: WorldConfig, rng: np.random.Generator, growth) -> dict[date, list[dict]]:
    by_period: dict[date, list[dict]] = defaultdict(list)
    emails = _emails(config, rng, growth)
    first_period = config.start.replace(day=1)
    duplicated = None
    for day in config.days():
        period = day.replace(day=1)
        rows = by_period[period]
        count = emails[day]
        rows.append(_aws_row(day, "Amazon Simple Email Service", "Business Applications", "AmazonSES", "Recipients",
                             "$0.10 per 1,000 recipients", count, "Count", SES_USD_PER_RECIPIENT,
                             count * SES_USD_PER_RECIPIENT, operation="SendEmail"))
        if day.day % 9 == 0:  # the team tests bounces against the mailbox simulator: free
            rows.append(_aws_row(day, "Amazon Simple Email Service", "Business Applications", "AmazonSES",
                                 "Recipients-MailboxSim", "$0.00 per recipient - mailbox simulator", 40, "Count", 0.0,
                                 0.0, operation="SendEmail"))
        hours = 24 * EC2_INSTANCES
        rows.append(_aws_row(day, "Amazon Elastic Compute Cloud", "Compute", "AmazonEC2", "BoxUsage:t3.medium",
                             "$0.0416 per On Demand Linux t3.medium Instance Hour", hours, "Hours", EC2_USD_PER_HOUR,
                             hours * EC2_USD_PER_HOUR, operation="RunInstances"))
        rows.append(_aws_row(day, "Amazon Elastic Compute Cloud", "Compute", "AmazonEC2", "EBS:VolumeUsage.gp3",
                             "$0.08 per GB-month of General Purpose (gp3) provisioned storage",
                             round(100 * 2 / 30.4, 6), "GB-Mo", 0.08, 100 * 2 / 30.4 * 0.08,
                             operation="CreateVolume-Gp3"))
        if day.day == 14 and duplicated is None and period > first_period:
            duplicated = (day, count)  # billed twice by mistake this month, reversed next month
            rows.append(_aws_row(day, "Amazon Simple Email Service", "Business Applications", "AmazonSES",
                                 "Recipients", "$0.10 per 1,000 recipients", count, "Count", SES_USD_PER_RECIPIENT,
                                 count * SES_USD_PER_RECIPIENT, operation="SendEmail"))
    periods = sorted(by_period)
    for n, period in enumerate(periods[:CREDIT_MONTHS]):
        last = min(_next_month(period) - timedelta(days=1), config.end)
        by_period[period].append(_aws_row(
            last, "Amazon Elastic Compute Cloud", "Compute", "AmazonEC2", "", f"AWS Activate Credits ({n + 1} of "
            f"{CREDIT_MONTHS}), credit from account: {AWS_ACCOUNT}", None, None, None, -CREDIT_USD,
            charge_category="Credit", frequency="One-Time"))
    if duplicated is not None:
        day, count = duplicated
        following = _next_month(day.replace(day=1))
        if following in by_period:
            by_period[following].append(_aws_row(
                day, "Amazon Simple Email Service", "Business Applications", "AmazonSES", "Recipients",
                "Correction: duplicate recipients charge", -count, "Count", SES_USD_PER_RECIPIENT,
                -count * SES_USD_PER_RECIPIENT, charge_class="Correction", operation="SendEmail",
                billing_period=following))
    return dict(by_period)


def _eur_per_usd(fx, day: date) -> float | None:
    """EUR per USD of the day's ECB rate (the last published one on weekends and holidays); None before
    the simulation's first published rate (the EU deployment's bill starts there)."""
    for back in range(10):
        rate = fx.rates.get((day - timedelta(days=back), "USD"))
        if rate:
            return 1.0 / rate
    return None


def _azure(config: WorldConfig, rng: np.random.Generator, ai, fx) -> dict[date, list[dict]]:

    catalog = load_catalog()
    tokens: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (tier, day, model), (billed_input, cached, output, _) in ai.billed().items():
        if tier == "azure":
            tokens[(day, model)] = [billed_input - cached, cached, output]
    by_period: dict[date, list[dict]] = defaultdict(list)
    reversed_one = False
    for (day, model), (uncached, cached, output) in sorted(tokens.items()):
        price = catalog.price("azure", model, day)
        if not isinstance(price, Price):
            continue
        eur = _eur_per_usd(fx, day)
        if eur is None:
            continue
        name = _meter_model(model)
        meters = (("Inp", uncached, price.input_usd_per_mtok), ("cached Inp", cached, price.cached_input_usd_per_mtok),
                  ("Outp", output, price.output_usd_per_mtok))
        for kind, count, usd_per_mtok in meters:
            if count <= 0:
                continue
            usd = count * usd_per_mtok / 1e6 * (1 + float(np.clip(rng.normal(0, 0.006), -0.015, 0.015)))
            row = _azure_row(day, f"{name} {kind} DZone Tokens", count, usd_per_mtok / 1000 * eur, usd * eur, usd)
            by_period[day.replace(day=1)].append(row)
            if not reversed_one and kind == "Outp" and day.day == 20:
                reversed_one = True  # re-rated the next day: the charge reversed, as in Microsoft's own sample
                by_period[day.replace(day=1)].append(_azure_row(day + timedelta(days=1), f"{name} {kind} DZone Tokens",
                                                                -count, usd_per_mtok / 1000 * eur, -usd * eur, -usd))
    return dict(by_period)


def _meter_model(snapshot: str) -> str:
    """"gpt-4o-mini-2024-07-18" -> "gpt 4o mini 0718", the shape of Azure OpenAI meter names."""
    parts = snapshot.split("-")
    if len(parts) >= 4 and parts[-3].isdigit():
        return " ".join([*parts[:-3], parts[-2] + parts[-1]])
    return snapshot.replace("-", " ")


def _azure_row(day: date, meter: str, tokens: int, eur_per_1k: float, eur: float, usd: float) -> dict:
    period = day.replace(day=1)
    start = datetime.combine(day, time())
    return {
        "AvailabilityZone": None, "BilledCost": round(eur, 10), "BillingAccountId": AZURE_ACCOUNT,
        "BillingAccountName": "Statex GmbH", "BillingAccountType": "Billing Profile", "BillingCurrency": "EUR",
        "BillingPeriodEnd": datetime.combine(_next_month(period), time()),
        "BillingPeriodStart": datetime.combine(period, time()), "ChargeCategory": "Usage", "ChargeClass": None,
        "ChargeDescription": "Azure OpenAI", "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": start + timedelta(days=1), "ChargePeriodStart": start,
        "CommitmentDiscountCategory": None, "ConsumedQuantity": float(tokens), "ConsumedUnit": "Units",
        "ContractedCost": round(eur, 10), "ContractedUnitPrice": round(eur_per_1k, 10),
        "EffectiveCost": round(eur, 10), "InvoiceIssuerName": "Microsoft", "ListCost": round(eur, 10),
        "ListUnitPrice": round(eur_per_1k, 10), "PricingCategory": "Standard", "PricingQuantity": tokens / 1000,
        "PricingUnit": "Units", "ProviderName": "Microsoft", "PublisherName": "Microsoft", "RegionId": "swedencentral",
        "RegionName": "Sweden Central",
        "ResourceId": f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/statex-ai/providers/"
                      "Microsoft.CognitiveServices/accounts/statex-eu-openai",
        "ResourceName": "statex-eu-openai", "ResourceType": "Azure AI services multi-service account",
        "ServiceCategory": "AI and Machine Learning", "ServiceName": "Azure AI Services",
        "ServiceSubcategory": "AI Platforms", "SkuId": "DZH318Z0BQ4L", "SkuMeter": meter,
        "SkuPriceId": "DZH318Z0BQ4L/00F3", "SubAccountId": AZURE_SUBSCRIPTION, "SubAccountName": "statex-prod",
        "Tags": "{}", "x_BilledCostInUsd": round(usd, 10), "x_PricingBlockSize": 1000.0,
        "x_PricingUnitDescription": "1K", "x_SkuMeterCategory": "Cognitive Services",
        "x_SkuMeterSubcategory": "Azure OpenAI",
    }


def _r2(config: WorldConfig, rng: np.random.Generator, growth) -> tuple[dict[tuple, list[int]], list[tuple]]:
    requests = growth.prototype_requests.per_day()
    operations: dict[tuple, list[int]] = {}
    storage: list[tuple] = []
    for bucket in BUCKETS:
        size = bucket.start_gb * 1e9
        objects = size / (bucket.object_kb * 1e3)
        for day in config.days():
            factor = EGRESS_SEASON[day.month] * float(rng.lognormal(0, 0.25))
            growth_today = bucket.growth_gb_per_day * 1e9 * (1 + 0.2 * requests[day]) * float(rng.uniform(0.5, 1.5))
            for hour in sorted(rng.choice(24, size=4, replace=False)):
                size += growth_today / 4
                objects = size / (bucket.object_kb * 1e3)
                moment = datetime.combine(day, time(int(hour), int(rng.integers(0, 12)) * 5))
                storage.append((moment, bucket.name, bucket.storage_class, int(size), int(objects * 220),
                                int(objects), 0))
            gets = int(rng.poisson(bucket.gets_per_day * config.scale * factor))
            puts = int(rng.poisson(bucket.puts_per_day * config.scale))
            egress = int(bucket.egress_gb_per_day * 1e9 * factor)
            counts = {
                ("GetObject", "success", 200): [gets, egress, egress],
                ("GetObject", "userError", 404): [int(gets * 0.01), 0, 0],
                ("GetObject", "userError", 403): [int(gets * 0.004), 0, 0],
                ("HeadObject", "success", 200): [gets // 4, 0, 0],
                ("PutObject", "success", 200): [puts, 0, int(puts * bucket.object_kb * 1e3)],
                ("PutObject", "userError", 412): [max(1, puts // 500), 0, 0],
                ("ListObjects", "success", 200): [puts // 20 + 50, 0, 0],
                ("DeleteObject", "success", 204): [puts // 10, 0, 0],
                ("GetBucketSippyConfiguration", "success", 200): [int(rng.integers(0, 4)), 0, 0],
            }
            for (action, status, code), values in counts.items():
                if values[0] > 0:
                    operations[(day, bucket.name, action, status, code, bucket.storage_class)] = values
    return operations, storage

