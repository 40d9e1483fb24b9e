"""The KPI registry (`registry`, `definitions/*.yaml`) and the KPI record every report returns (`record.Metric`)."""
