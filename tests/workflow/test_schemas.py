"""Schemas given as serializer classes or instances validate alike."""

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from workflow.schemas import validate


class Item(serializers.Serializer):
    id = serializers.IntegerField()


def test_class_schema_validates_a_dict():
    """A serializer class validates a dict into plain validated data."""
    assert validate(Item, {"id": 3}) == {"id": 3}


def test_instance_schema_keeps_its_arguments():
    """An instance such as Item(many=True) validates a list, keeping many=True."""
    assert validate(Item(many=True), [{"id": 1}, {"id": 2}]) == [{"id": 1}, {"id": 2}]


def test_invalid_data_raises_naming_the_field():
    """Invalid data raises DRF's ValidationError with the field's message."""
    with pytest.raises(ValidationError) as caught:
        validate(Item, {"id": "x"})
    assert "id" in caught.value.detail


def test_list_schema_keeps_its_list_arguments():
    """Item(many=True, allow_empty=False) still refuses an empty list."""
    with pytest.raises(ValidationError):
        validate(Item(many=True, allow_empty=False), [])
    assert validate(Item(many=True, allow_empty=False), [{"id": 4}]) == [{"id": 4}]


def test_instance_schema_keeps_its_field_arguments():
    """An instance declared with partial=True validates without its required fields."""
    assert validate(Item(partial=True), {}) == {}
