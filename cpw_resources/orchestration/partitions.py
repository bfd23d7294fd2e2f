"""One dynamic partition per title; keys come from ``cpw register`` or the inbox sensor."""

from dagster import DynamicPartitionsDefinition

titles = DynamicPartitionsDefinition(name="titles")
