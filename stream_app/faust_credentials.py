"""faust's (aiokafka's) side of the Kafka security settings: the same protocol, mechanism, user and
certificates `Settings.kafka_client_config` gives librdkafka, as faust's credentials objects."""

from __future__ import annotations

from typing import Any

import faust

from paylimit.settings import Settings


def broker_credentials(settings: Settings) -> Any:
    """faust's (aiokafka's) side of the settings `Settings.kafka_client_config` gives librdkafka."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if protocol.endswith("SSL"):
        import ssl

        ssl_context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_location)
        if settings.kafka_ssl_certificate_location:
            key_password = settings.kafka_ssl_key_password
            ssl_context.load_cert_chain(settings.kafka_ssl_certificate_location, settings.kafka_ssl_key_location,
                                        key_password.get_secret_value() if key_password else None)
        if protocol == "SSL":
            return faust.SSLCredentials(ssl_context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context,
    )
