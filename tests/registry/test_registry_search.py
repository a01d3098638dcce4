"""SearchMethods ranking over names, tags and descriptions."""

from __future__ import annotations

import grpc
import pytest

from baton.registry.v1 import registry_pb2 as pb

from .builders import register, rpc_error

pytestmark = pytest.mark.timeout(30)


async def test_search_ranks_name_token_over_tag_over_partial_name_over_description(stub):
    await register(stub, "audit.log", description="Writes a report line")
    await register(stub, "reporting.list")
    await register(stub, "billing.charge", tags=("report",))
    await register(stub, "casefile.report")
    await register(stub, "other.thing", description="Unrelated")

    reply = await stub.SearchMethods(pb.SearchMethodsRequest(query="report"))
    assert [r.method.name for r in reply.results] == [
        "casefile.report", "billing.charge", "reporting.list", "audit.log"]
    scores = [r.score for r in reply.results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4


async def test_search_puts_the_exact_name_first(stub):
    await register(stub, "casefile.report_all", tags=("casefile", "report"),
                   description="casefile report")
    await register(stub, "casefile.report")
    reply = await stub.SearchMethods(pb.SearchMethodsRequest(query="casefile.report"))
    assert [r.method.name for r in reply.results] == ["casefile.report", "casefile.report_all"]


async def test_search_returns_at_most_page_size_results(stub):
    for i in range(5):
        await register(stub, f"casefile.op_{i}")
    reply = await stub.SearchMethods(pb.SearchMethodsRequest(query="casefile", page_size=2))
    assert [r.method.name for r in reply.results] == ["casefile.op_0", "casefile.op_1"]


@pytest.mark.parametrize("query", ["", "   ", "?!"])
async def test_search_rejects_a_query_without_words(stub, query):
    err = await rpc_error(stub.SearchMethods(pb.SearchMethodsRequest(query=query)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations[0][0] == "query"
