{{/*
Names, labels and images shared by every template of the chart.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else RELEASE-NAME (just RELEASE when the
release name already contains the chart name), cut to 63 characters for DNS label rules.
*/}}
{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, as used by the helm.sh/chart label. */}}
{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator pods; never change them between versions. */}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of every object of the release, without a component. */}}
{{- define "gatehouse.commonLabels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gatehouse
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the operator's objects (workload, RBAC, Services). */}}
{{- define "gatehouse.labels" -}}
{{ include "gatehouse.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: the tag defaults to the chart's appVersion and
`latest` is refused (the schema refuses it too; this guards the appVersion path).
Call with (dict "image" .Values.image.operator "context" $).
*/}}
{{- define "gatehouse.image" -}}
{{- $tag := default .context.Chart.AppVersion .image.tag | toString }}
{{- if eq (lower $tag) "latest" }}
{{- fail "image tags must be pinned: `latest` is not allowed" }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The RBAC rules the operator needs on the namespaced resources it watches and owns, exactly:
its custom resources (read and patch, status written), the objects it renders for every proxy
(NetworkPolicies included, even with proxyNetworkPolicy.enabled=false: a resource may ask for one,
and turning them off deletes those made before; each proxy's Role and RoleBinding), events, and
reading the EndpointSlices of the proxy Services (to find the ready proxy pods). Secrets are read
only: Kubernetes lets a subject create (and bind) a Role only with rights it holds itself, and a
proxy's Role grants reading its clients' Secrets; the alternative, the `escalate` and `bind`
verbs, would let the operator grant anything. It never writes a Secret. Used by the ClusterRole,
or by the Role when watchNamespace is set.
*/}}
{{- define "gatehouse.operatorRules" -}}
- apiGroups: ["gatehouse.dev"]
  resources: ["gateways", "edgeservices", "aggregators"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["gatehouse.dev"]
  resources: ["gateways/status", "edgeservices/status", "aggregators/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["gatehouse.dev"]
  resources: ["contracts", "contractgrants"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["gatehouse.dev"]
  resources: ["contracts/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
