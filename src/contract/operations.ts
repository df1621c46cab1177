// Every operation of the contract, by operationId. The Handlers type makes a missing or
// mistyped handler a compile error. Every POST of a tenant takes an Idempotency-Key (starting
// and retrying an execution, and replaying a trigger's delivery, handle their own, to act after
// the commit); every PUT, PATCH and DELETE honours If-Match.

import { idempotent } from '../http/rules/idempotency.ts';
import { conditional, patching } from '../http/rules/preconditions.ts';
import * as actions from '../resources/actions.ts';
import * as apiKeys from '../resources/apiKeys.ts';
import * as executionLogs from '../resources/executionLogs.ts';
import * as executions from '../resources/executions.ts';
import * as flows from '../resources/flows.ts';
import * as hooks from '../resources/hooks.ts';
import * as organizations from '../resources/organizations.ts';
import * as problemTypes from '../resources/problemTypes.ts';
import * as service from '../resources/service.ts';
import * as subscriptionDeliveries from '../resources/subscriptionDeliveries.ts';
import * as subscriptions from '../resources/subscriptions.ts';
import * as tools from '../resources/tools.ts';
import * as triggers from '../resources/triggers.ts';
import * as users from '../resources/users.ts';
import type { Handlers } from './handlers.ts';

export const handlers: Handlers = {
  getIndex: service.getIndex,
  getHealth: service.getHealth,
  getReadiness: service.getReadiness,
  listProblemTypes: problemTypes.listProblemTypes,
  getProblemType: problemTypes.getProblemType,
  listOrganizations: organizations.listOrganizations,
  createOrganization: organizations.createOrganization,
  getOrganization: organizations.getOrganization,
  updateOrganization: conditional('organizations', organizations.getOrganization, organizations.updateOrganization),
  patchOrganization: patching('organizations', organizations.getOrganization, organizations.updateOrganization),
  deleteOrganization: conditional('organizations', organizations.getOrganization, organizations.deleteOrganization),
  listUsers: users.listUsers,
  createUser: idempotent('createUser', users.createUser),
  getUser: users.getUser,
  updateUser: conditional('users', users.getUser, users.updateUser),
  patchUser: patching('users', users.getUser, users.updateUser),
  deleteUser: conditional('users', users.getUser, users.deleteUser),
  listApiKeys: apiKeys.listApiKeys,
  createApiKey: idempotent('createApiKey', apiKeys.createApiKey, apiKeys.replayRefused),
  getApiKey: apiKeys.getApiKey,
  deleteApiKey: conditional('api_keys', apiKeys.getApiKey, apiKeys.deleteApiKey),
  listTools: tools.listTools,
  createTool: idempotent('createTool', tools.createTool),
  getTool: tools.getTool,
  updateTool: conditional('tools', tools.getTool, tools.updateTool),
  patchTool: patching('tools', tools.getTool, tools.updateTool),
  deleteTool: conditional('tools', tools.getTool, tools.deleteTool),
  listActions: actions.listActions,
  createAction: idempotent('createAction', actions.createAction),
  getAction: actions.getAction,
  updateAction: conditional('actions', actions.getAction, actions.updateAction),
  patchAction: patching('actions', actions.getAction, actions.updateAction),
  deleteAction: conditional('actions', actions.getAction, actions.deleteAction),
  listFlows: flows.listFlows,
  createFlow: idempotent('createFlow', flows.createFlow),
  getFlow: flows.getFlow,
  updateFlow: conditional('flows', flows.getFlow, flows.updateFlow),
  patchFlow: patching('flows', flows.getFlow, flows.updateFlow),
  deleteFlow: conditional('flows', flows.getFlow, flows.deleteFlow),
  listFlowVersions: flows.listFlowVersions,
  getFlowVersion: flows.getFlowVersion,
  listTriggers: triggers.listTriggers,
  createTrigger: idempotent('createTrigger', triggers.createTrigger, undefined, triggers.withoutSecret),
  getTrigger: triggers.getTrigger,
  updateTrigger: conditional('triggers', triggers.getTrigger, triggers.updateTrigger),
  patchTrigger: patching('triggers', triggers.getTrigger, triggers.updateTrigger),
  deleteTrigger: conditional('triggers', triggers.getTrigger, triggers.deleteTrigger),
  listTriggerDeliveries: triggers.listTriggerDeliveries,
  replayTriggerDelivery: triggers.replayTriggerDelivery,
  receiveWebhook: hooks.receiveWebhook,
  listSubscriptions: subscriptions.listSubscriptions,
  createSubscription: idempotent('createSubscription', subscriptions.createSubscription, undefined, subscriptions.withoutSecret),
  getSubscription: subscriptions.getSubscription,
  updateSubscription: conditional('subscriptions', subscriptions.getSubscription, subscriptions.updateSubscription),
  patchSubscription: patching('subscriptions', subscriptions.getSubscription, subscriptions.updateSubscription),
  deleteSubscription: conditional('subscriptions', subscriptions.getSubscription, subscriptions.deleteSubscription),
  rotateSubscriptionSecret: idempotent('rotateSubscriptionSecret', subscriptions.rotateSubscriptionSecret, subscriptions.replayRefused),
  listSubscriptionDeliveries: subscriptionDeliveries.listSubscriptionDeliveries,
  redeliverSubscriptionDelivery: idempotent('redeliverSubscriptionDelivery', subscriptionDeliveries.redeliverSubscriptionDelivery),
  startExecution: executions.startExecution,
  listExecutions: executions.listExecutions,
  getExecution: executions.getExecution,
  cancelExecution: idempotent('cancelExecution', executions.cancelExecution),
  signalExecution: idempotent('signalExecution', executions.signalExecution),
  retryExecution: executions.retryExecution,
  listExecutionLogs: executionLogs.listExecutionLogs,
  createExecutionLog: idempotent('createExecutionLog', executionLogs.createExecutionLog),
  getExecutionLog: executionLogs.getExecutionLog,
  updateExecutionLog: conditional('execution_logs', executionLogs.getExecutionLog, executionLogs.updateExecutionLog),
  patchExecutionLog: patching('execution_logs', executionLogs.getExecutionLog, executionLogs.updateExecutionLog),
  deleteExecutionLog: conditional('execution_logs', executionLogs.getExecutionLog, executionLogs.deleteExecutionLog),
};
