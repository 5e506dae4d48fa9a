"""Provisioning as code: Grafana dashboards (generated JSON); Elasticsearch/Kibana objects next."""
