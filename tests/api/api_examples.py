"""Realistic example objects of bifrost's CRDs for the api tests (plain dicts, as from YAML)."""

from __future__ import annotations

from typing import Any

import yaml

# A cloud edge in the seed's spirit: Crossplane load balancer + listener, DNS, certificate.
EDGE_BLUEPRINT: dict[str, Any] = yaml.safe_load(
    r"""
apiVersion: gateway.bifrost.dev/v1alpha1
kind: GatewayClassBlueprint
metadata:
  name: edge
spec:
  defaults:
    scheme: internet-facing
    accessLogs: {enabled: true, bucket: edge-logs}
    allowedCidrs: [0.0.0.0/0]
  overrides:
    accessLogs: {enabled: true}
  children:
    - id: load-balancer
      template: |
        apiVersion: elbv2.aws.upbound.io/v1beta1
        kind: LB
        metadata: {name: "{{ gateway.metadata.name }}"}
        spec:
          forProvider:
            internal: {{ values.scheme == 'internal' }}
      readyWhen: object.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')
      deleteOrder: 1
    - id: listener
      dependsOn: [load-balancer]
      template: |
        apiVersion: elbv2.aws.upbound.io/v1beta1
        kind: LBListener
        metadata: {name: "{{ gateway.metadata.name }}-443"}
        spec:
          forProvider:
            loadBalancerArn: "{{ children['load-balancer'].status.atProvider.arn }}"
      deleteOrder: 1
    - id: dns
      dependsOn: [load-balancer]
      template: |
        apiVersion: externaldns.k8s.io/v1alpha1
        kind: DNSEndpoint
        metadata: {name: "{{ gateway.metadata.name }}"}
      deleteOrder: 2  # DNS records go first
  routeChildren:
    - id: shadow-route
      template: |
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: "{{ route.metadata.name }}-shadow"}
  addresses: >-
    [{'type': 'Hostname', 'value': children['load-balancer'].status.atProvider.dnsName}]
  tls:
    certificateTemplate: |
      apiVersion: cert-manager.io/v1
      kind: Certificate
      metadata: {name: "{{ certificate.name }}"}
      spec:
        secretName: "{{ certificate.secretName }}"
        dnsNames: {{ listener.hostnames | tojson }}
        issuerRef: {name: letsencrypt, kind: ClusterIssuer}
    readyWhen: 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")'
    issueTimeoutSeconds: 900
    verify:
      mode: tlsProbe
      endpoint: '{"host": gateway.status.addresses[0].value, "port": listener.port}'
      timeoutSeconds: 30
    drainSeconds: 300
    renewBefore:
      percentage: 33
    maintenanceWindows:
      - days: [Tue, Wed, Thu]
        start: "22:00"
        end: "04:00"
        timezone: Europe/Berlin
"""
)

# An in-cluster datapath: the smallest useful blueprint (no TLS management).
MESH_BLUEPRINT: dict[str, Any] = yaml.safe_load(
    r"""
apiVersion: gateway.bifrost.dev/v1alpha1
kind: GatewayClassBlueprint
metadata:
  name: mesh
spec:
  children:
    - id: gateway
      template: |
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: "{{ gateway.metadata.name }}-istio"}
        spec: {gatewayClassName: istio}
    - id: hpa
      dependsOn: [gateway]
      template: |
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: "{{ gateway.metadata.name }}"}
"""
)

CLASS_WIDE_CONFIG: dict[str, Any] = yaml.safe_load(
    r"""
apiVersion: gateway.bifrost.dev/v1alpha1
kind: GatewayClassConfig
metadata:
  name: edge-class
  namespace: bifrost-system
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: GatewayClass, name: edge}
  default:
    waf: {enabled: true, ruleSet: baseline}
  override:
    allowedCidrs: [10.0.0.0/8]
"""
)

GATEWAY_CONFIG: dict[str, Any] = yaml.safe_load(
    r"""
apiVersion: gateway.bifrost.dev/v1alpha1
kind: GatewayConfig
metadata:
  name: shop-gateway
  namespace: shop
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: shop}
  default:
    scheme: internal
    waf: {ruleSet: strict}
"""
)
