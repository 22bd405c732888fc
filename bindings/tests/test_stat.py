"""stat() returns typed frozen dataclasses that give back the document of `shmbus stat
--json` (to_dict(), dataclasses.asdict) and still read like the dict it used to return."""

import ast
import dataclasses
import json
import os
import typing

import pytest

import shmbus
from shmbus import _shmbus


def _document(name, ns, interval=0.0):
    return json.loads(_shmbus._stat_json(name, ns, interval, 1.0))


def _busy_stream(ns, tmp_path):
    """A persisted stream with a producer, a durable group and records."""
    shmbus.create("st", capacity="1M", namespace=ns)
    p = shmbus.Producer("st", namespace=ns)
    c = shmbus.Consumer("st", group="g", namespace=ns)
    for i in range(20):
        p.publish(b"x" * i)
    c.read_batch(5, timeout=0)
    pers = shmbus.Persister("st", namespace=ns, data_dir=tmp_path)
    p.publish_durable(b"durable", timeout=30)
    return p, c, pers


def _walk(doc, obj, path="st"):
    """Every key of the dict reachable from the object, equal, by attribute and by [key]."""
    n = 0
    for key, value in doc.items():
        where = f"{path}[{key!r}]"
        assert key in obj, where
        by_key, by_attr = obj[key], getattr(obj, key)
        assert by_key is by_attr, where
        if isinstance(value, dict):
            n += _walk(value, by_attr, where)
        elif isinstance(value, list):
            assert len(by_attr) == len(value), where
            for i, item in enumerate(value):
                n += _walk(item, by_attr[i], f"{where}[{i}]")
        else:
            assert by_attr == value and type(by_attr) is type(value), where
            n += 1
    return n


def test_every_key_of_the_dict_is_reachable_and_equal(ns, tmp_path):
    p, c, pers = _busy_stream(ns, tmp_path)
    try:
        for interval in (0.0, 0.2):
            doc = _document("st", ns, interval)
            assert doc["persist"] is not None and doc["producers"] and doc["consumers"]
            st = shmbus.StreamStat.from_dict(doc)
            assert st.to_dict() == doc
            assert st == doc and doc == st and st.consumers[0] == doc["consumers"][0]
            assert {**st} == doc  # the mapping protocol: keys() and [key]
            assert list(st) == list(doc) and len(st) == len(doc) and sorted(st) == sorted(doc)
            assert list(st.consumers[0]) == list(doc["consumers"][0])
            assert dataclasses.asdict(st) == doc
            assert json.loads(json.dumps(st.to_dict())) == doc
            assert _walk(doc, st) > 60
            assert sorted(st.keys()) == sorted(doc)
            assert st.get("no such key", 7) == 7 and "no such key" not in st
            with pytest.raises(KeyError):
                st["no such key"]
        assert isinstance(st.persist, shmbus.PersistStat)
        assert isinstance(st.producers[0], shmbus.ProducerStat)
        assert isinstance(st.consumers[0], shmbus.ConsumerStat)
        assert st.consumers[0].name == "g" and st.consumers[0]["lag"] == st.consumers[0].lag
        assert st.lambda_records_per_s is not None
    finally:
        pers.stop()
        c.close()
        p.close()


def test_stat_returns_a_frozen_dataclass(ns):
    shmbus.create("s", capacity="1M", namespace=ns)
    st = shmbus.stat("s", namespace=ns)
    assert isinstance(st, shmbus.StreamStat) and dataclasses.is_dataclass(st)
    assert st.persist is None and st["persist"] is None and st.producers == []
    assert st.stream == "s" and st["namespace"] == ns and st.interval_s == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.next_seq = 5
    assert st == shmbus.StreamStat.from_dict(st.to_dict())


def test_fields_have_their_declared_types(ns, tmp_path):
    """Each value has the type its field declares (Optional[float] is None or a float...)."""
    p, c, pers = _busy_stream(ns, tmp_path)
    try:
        st = shmbus.stat("st", namespace=ns, interval=0.2)
    finally:
        pers.stop()
        c.close()
        p.close()

    def check(obj):
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value, hint = getattr(obj, f.name), hints[f.name]
            args = typing.get_args(hint)
            origin = typing.get_origin(hint)
            if origin is list:
                assert isinstance(value, list), f.name
                for item in value:
                    assert isinstance(item, args[0]), f.name
                    check(item)
                continue
            allowed = tuple(a for a in args if a is not type(None)) if origin is typing.Union else (hint,)
            if value is None:
                assert type(None) in args, f.name
                continue
            if float in allowed:
                allowed += (int,)  # JSON writes 0.0 as 0 in places
            assert isinstance(value, allowed), (f.name, value, hint)
            if bool not in allowed:
                assert not isinstance(value, bool), f.name
            if dataclasses.is_dataclass(value):
                check(value)

    check(st)


def test_stub_fields_are_the_dataclass_fields():
    path = os.path.join(os.path.dirname(shmbus.__file__), "__init__.pyi")
    with open(path) as f:
        tree = ast.parse(f.read())
    stubs = {n.name: [a.target.id for a in n.body if isinstance(a, ast.AnnAssign)]
             for n in tree.body if isinstance(n, ast.ClassDef)}
    for cls in (shmbus.StreamStat, shmbus.PersistStat, shmbus.ProducerStat, shmbus.ConsumerStat):
        assert stubs[cls.__name__] == [f.name for f in dataclasses.fields(cls)], cls.__name__


def test_unknown_keys_survive_the_round_trip():
    """A key a newer C++ side adds is kept: to_dict() still gives the whole document."""
    shmbus.create  # noqa: B018 - the module is loaded
    doc = {f.name: None for f in dataclasses.fields(shmbus.StreamStat)}
    doc.update(producers=[], consumers=[{f.name: 1 for f in dataclasses.fields(shmbus.ConsumerStat)}
                                        | {"future": "x"}], new_key=3)
    st = shmbus.StreamStat.from_dict(doc)
    assert st.to_dict() == doc and st["new_key"] == 3 and st.consumers[0]["future"] == "x"


def test_stat_reads_as_a_mapping_like_the_dict_it_replaced(ns, tmp_path):
    # The reviewer's list: items(), values(), isinstance Mapping; json through to_dict().
    import collections.abc

    p, c, pers = _busy_stream(ns, tmp_path)
    try:
        st = shmbus.stat("st", namespace=ns)
        doc = st.to_dict()
        assert isinstance(st, collections.abc.Mapping)
        assert [k for k, _ in st.items()] == list(st.keys()) and set(st.keys()) == set(doc)
        assert [v for _, v in st.items()] == st.values()
        assert st.persist is not None and isinstance(st.persist, collections.abc.Mapping)
        assert st.producers and all(isinstance(x, collections.abc.Mapping) for x in st.producers)
        assert dict(st.producers[0].items()) == {k: st.producers[0][k] for k in st.producers[0]}
        assert json.loads(json.dumps(st.to_dict())) == doc
    finally:
        pers.stop()
        c.close()
        p.close()
