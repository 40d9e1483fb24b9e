{#- Money conversions of the marts. Amounts are stored in minor units of their currency (cents, yen);
    core.currencies gives each currency's minor-unit exponent (absent: 2), core.fx_daily_eur_rates the
    units of the currency per euro on a day. Full precision: nothing is rounded here. -#}

{#- An amount in minor units -> major units of its currency (JPY exponent 0, EUR 2, KWD 3). -#}
{% macro minor_to_major(amount_minor, exponent) -%}
    cast({{ amount_minor }} as double) / power(10, coalesce({{ exponent }}, 2))
{%- endmacro %}

{#- An amount in minor units -> euros, at `eur_rate` units of the currency per euro (NULL without a rate). -#}
{% macro minor_to_eur(amount_minor, exponent, eur_rate) -%}
    {{ minor_to_major(amount_minor, exponent) }} / {{ eur_rate }}
{%- endmacro %}

{#- A payment's or refund's amount and fee, each in its own currency (major units) and in euros at the
    ECB rate of the row's (UTC) day: the select columns, and the joins they need (`eur_joins`). Amounts
    use the decimals the provider sent them with (PayPal: HUF 0), ISO 4217's for rows loaded before
    the connector recorded them. -#}
{% macro eur_columns(rel) -%}
        {{ rel }}.currency,
        {{ rel }}.amount_minor,
        {{ minor_to_major(rel ~ '.amount_minor', 'coalesce(' ~ rel ~ '.currency_exponent, amount_exponent.exponent)') }} as amount,
        amount_rate.rate as eur_rate,
        amount_rate.rate_date as eur_rate_date,
        {{ minor_to_eur(rel ~ '.amount_minor', 'coalesce(' ~ rel ~ '.currency_exponent, amount_exponent.exponent)', 'amount_rate.rate') }} as amount_eur,
        {{ rel }}.fee_currency,
        {{ rel }}.fee_minor,
        {{ minor_to_major(rel ~ '.fee_minor', 'coalesce(' ~ rel ~ '.fee_currency_exponent, fee_exponent.exponent)') }} as fee,
        fee_rate.rate as fee_eur_rate,
        {{ minor_to_eur(rel ~ '.fee_minor', 'coalesce(' ~ rel ~ '.fee_currency_exponent, fee_exponent.exponent)', 'fee_rate.rate') }} as fee_eur
{%- endmacro %}

{% macro eur_joins(rel, exponents, rates) -%}
    left join {{ exponents }} as amount_exponent
        on {{ rel }}.currency = amount_exponent.currency
    left join {{ exponents }} as fee_exponent
        on {{ rel }}.fee_currency = fee_exponent.currency
    left join {{ rates }} as amount_rate
        on {{ rel }}.currency = amount_rate.currency
        and cast({{ rel }}.created_at as date) = amount_rate.rate_day
    left join {{ rates }} as fee_rate
        on {{ rel }}.fee_currency = fee_rate.currency
        and cast({{ rel }}.created_at as date) = fee_rate.rate_day
{%- endmacro %}

