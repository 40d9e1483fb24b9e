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
