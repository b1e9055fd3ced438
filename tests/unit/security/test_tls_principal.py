"""A client certificate's subject as Kafka writes it (RFC 2253) and ssl.principal.mapping.rules."""

import pytest

from kavka.config import ConfigError
from kavka.security.tls import PrincipalMapper, subject_dn

CERT = {"subject": ((("countryName", "US"),), (("organizationName", "Example, Inc."),),
                    (("organizationalUnitName", "eng"), ("commonName", "alice")),
                    (("emailAddress", "a@x.io"),))}


def test_subject_dn_is_rfc2253_last_rdn_first_with_escapes():
    assert subject_dn(CERT) == ("1.2.840.113549.1.9.1=#16066140782e696f,OU=eng+CN=alice,"
                                "O=Example\\, Inc.,C=US")
    assert subject_dn({"subject": ((("commonName", "#lead "),),)}) == "CN=\\#lead\\ "


def test_mapping_rules_first_match_wins_with_case_and_default():
    mapper = PrincipalMapper("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([^,]*),O=(.*)$/$1@$2/U,DEFAULT")
    assert mapper.name("CN=Kafka,OU=ServiceUsers,O=Example") == "kafka"
    assert mapper.name("CN=bob,O=example") == "BOB@EXAMPLE"
    assert mapper.name("OU=x") == "OU=x"
    assert PrincipalMapper("DEFAULT").name("CN=a,O=b") == "CN=a,O=b"
    assert PrincipalMapper(r"RULE:^CN=([^\/]*)\/x$/$1/").name("CN=a/x") == "a"


def test_no_matching_rule_and_malformed_rules():
    with pytest.raises(ValueError, match="no rule"):
        PrincipalMapper("RULE:^CN=(.*)$/$1/").name("OU=x")
    with pytest.raises(ConfigError, match="ssl.principal.mapping.rules"):
        PrincipalMapper("RULE:broken")
