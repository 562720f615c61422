/**
 * The Oktell telephony server's service events (seed 003) and its code tables (seeds 002, 003).
 *
 * Oktell sends each event as `<oktellcommapper><data><event id=".." name="..">` with
 * `property_simple key value [name]` and `property_cdata key` children, in UTF-16. The XML
 * ingress turns one event into a flat object keyed by `key`, and converts:
 * - coded values to their names with the tables below (`newstate: "usWOphone"`), keeping the
 *   raw number next to it as `<key>Code` (`newstateCode: 7`): the XML carries both (value and
 *   name attributes), the number is what Oktell's own methods take back (SetUserState), and
 *   notification types are bit flags that a newer server could combine. The name is required,
 *   the code optional (JSON senders may send only the name); when both are sent they must agree;
 * - 0/1 flags to booleans (`redirect`, `autohide`, `dbsaved`);
 * - "dd.MM.yyyy HH:mm:ss" (server local time) to ISO-8601 without a zone (oktellDateTimeToIso);
 * - `textb64` to `text` (UTF-8 text in base64); textb64 may be kept too.
 * The schemas here describe that converted payload and are named `oktell.<xml event name>`.
 * Every event is a loose object: properties the server sends that the catalog does not list are
 * kept as sent (a newer server's extras, a `userid` on 111); only the described ones are checked.
 * Events whose properties the seeds do not describe are `z.looseObject({})` (pass-through);
 * PersonalStateChanged (115) and LineStateChange (242) decode their state code (EUserState,
 * ELineState) like 111 does, when they carry one.
 */
import { z } from "zod";
import { enumOf, flag, id, int, isoLocalDateTime, str } from "../../base/catalog-fields.ts";

/** Event type ids of the service channel (OnCommunicate), with the seed's spelling. */
export const EOktellEvent = {
  101: "ShutdownRequested",
  102: "RestartRequested",
  103: "ConnectionLost",
  111: "UserStateChanged",
  112: "Notify",
  113: "VoiceMail",
  114: "UserMessage",
  115: "PersonalStateChanged",
  121: "TMInterfaceConfirm",
  122: "TMInterfaceReserve",
  123: "TMInterfaceClose",
  201: "HALSrvRegSuccess",
  202: "HALSrvRegTimeout",
  203: "HALDeviceFound",
  204: "HALDeviceLost",
  211: "HALLightenKey",
  212: "HALHeadsetParams",
  213: "HALClearNFieldNow",
  214: "HALClearNFieldNext",
  231: "CommutationStarted",
  232: "CommutationStopped",
  233: "FaxStarted",
  234: "FaxStopped",
  235: "FaxFilesReceived",
  236: "RingStarted",
  237: "RingFinished",
  238: "ACMStarted",
  239: "ACMFinished",
  240: "FlashHoldAction",
  241: "ChainStateChange",
  242: "LineStateChange",
  243: "CallDetected",
  261: "ConferenceListChanged",
  262: "ConferenceCompositionChanged",
  263: "ConferenceCompetitorStateChanged",
  264: "ConferenceEntranceRequest",
  265: "ConferenceEntranceDenied",
  266: "ConferenceEntrancePermitted",
  267: "ConferenceNotifyInvite",
  268: "ConferenceUserStateChanged",
} as const;

type Lower<T extends Record<number, string>> = { [K in keyof T]: Lowercase<T[K] & string> };

/** Event id -> the lowercase `name` attribute of `<event>` (and the suffix of `oktell.<name>`). */
export const oktellEventIds = Object.fromEntries(
  Object.entries(EOktellEvent).map(([k, v]) => [k, v.toLowerCase()]),
) as Lower<typeof EOktellEvent>;

/** The lowercase XML event name of each Oktell event. */
export type OktellXmlEventName = (typeof oktellEventIds)[keyof typeof oktellEventIds];

/** Lowercase XML event name -> event id (the reverse of oktellEventIds). */
export const oktellEventIdByName = Object.fromEntries(
  Object.entries(oktellEventIds).map(([k, v]) => [v, Number(k)]),
) as Record<OktellXmlEventName, keyof typeof EOktellEvent>;

/** User states (seed 002 `enum EUserState`, also UserStateChanged 111 and PersonalStateChanged 115). */
export const EUserState = {
  0: "usDisconnected", // not authorised / no connection to the logic server
  1: "usReady", // in place and ready, line free
  2: "usLunch", // call-centre break
  3: "usOff", // away: did not pick up a ringing call (filters further calls)
  5: "usFullbusy", // busy in a task or a conversation
  6: "usReserved", // reserved by a transaction (fast state)
  7: "usWOphone", // registered, but the line is missing, off or undefined
} as const;

/** Line (channel) states (seed 002 `enum ELineState`); flag-valued codes, one at a time. */
export const ELineState = {
  0x00000001: "lsDisconnected",
  0x00000002: "lsOff",
  0x00000004: "lsReady",
  0x00000008: "lsHookUp",
  0x00000010: "lsIncomingCall",
  0x00000020: "lsCommutated",
  0x00000040: "lsWait",
  0x00000080: "lsFlash",
  0x00000100: "lsWaitDown",
  0x00000200: "lsListenBusy",
  0x00000400: "lsUndefined",
  0x00000800: "lsReserved",
  0x00001000: "lsReservedByTask",
} as const;

/** Notification types of Notify (112) (seed 003); flag-valued codes, sent one at a time. */
export const ENotifyType = {
  0x00000: "nltNone",
  0x00002: "nltControlEvent", // control event
  0x00008: "nltPBXinfo", // PBX service information
  0x00010: "nltInformation", // general information
  0x00020: "nltIncomingCall", // incoming call
  0x00080: "nltTimer", // (undocumented in the seed: "??")
  0x00100: "nltCallbackOrder", // callback order
  0x00200: "nltApplication", // client application message
  0x00400: "nltApplicationWarn", // client application warning
  0x00800: "nltApplicationInfo", // client application information
  0x01000: "nltApplicationErr", // client application error
  0x40000: "nltColor", // colour-changing window from scripts (uses backcolor_argb)
} as const;

/** Answers to TMInterfaceConfirm (121) sent with TM_SetConfirmResult (seed 002): 0/1/2 or ok/skip/delete. */
export const EConfirmResult = { 0: "ok", 1: "skip", 2: "delete" } as const;

/** OnServiceMessage codes that duplicate events 101-103 (seed 003). */
export const EServiceMessage = { 13101: "Shutdown", 13102: "Restart", 13103: "ConnectionLost" } as const;

/** The name of a code in a code table, or undefined for an unknown code. */
export function codeToName<T extends Record<number, string>>(table: T, code: number): T[keyof T] | undefined {
  return Object.prototype.hasOwnProperty.call(table, code) ? (table as Record<number, T[keyof T]>)[code] : undefined;
}

/** The code of a name in a code table, or undefined for an unknown name. */
export function nameToCode<T extends Record<number, string>>(table: T, name: string): number | undefined {
  for (const [code, n] of Object.entries(table)) if (n === name) return Number(code);
  return undefined;
}

/** Oktell's "dd.MM.yyyy HH:mm:ss" (server local time) -> ISO-8601 "yyyy-MM-ddTHH:mm:ss", or undefined. */
export function oktellDateTimeToIso(value: string): string | undefined {
  const m = /^(\d{2})\.(\d{2})\.(\d{4})\s+(\d{2}):(\d{2}):(\d{2})$/.exec(value.trim());
  if (!m) return undefined;
  const [, dd, mm, yyyy, hh, mi, ss] = m;
  const iso = `${yyyy}-${mm}-${dd}T${hh}:${mi}:${ss}`;
  return isoLocalDateTime().safeParse(iso).success ? iso : undefined;
}

/** Decodes Oktell's base64 text (UTF-8 inside); throws on invalid base64 or UTF-8. */
export function decodeTextB64(b64: string): string {
  const bin = atob(b64.replace(/\s+/g, ""));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/** Checks that `<field>Code`, when present, is the code of `<field>`'s name in `table`. */
function codeMatches(table: Record<number, string>, field: string) {
  return (value: Record<string, unknown>, ctx: z.core.$RefinementCtx<Record<string, unknown>>) => {
    const code = value[`${field}Code`];
    if (code === undefined) return;
    if (codeToName(table, code as number) !== value[field]) {
      ctx.addIssue({
        code: "custom",
        path: [`${field}Code`],
        message: `code ${String(code)} does not match ${field} "${String(value[field])}"`,
      });
    }
  };
}

/** Fields of TMInterfaceConfirm (121) and TMInterfaceReserve (122): a call of a task to one subscriber. */
const taskCall = z
  .looseObject({
    /** Task id (UUID). */
    idtask: id(),
    /** Project id (UUID). */
    idproject: id(),
    taskname: z.string(),
    /** Task code; often empty. */
    taskcode: str(),
    /** Subscriber table id (UUID). */
    idlist: id(),
    /** The subscriber's row in that table. */
    idinlist: int(),
    /** The number chosen for dialling (kept as text: leading zeros, "+"). */
    number: str(),
    /** The subscriber's information fields, decoded from textb64. */
    text: z.string().optional(),
    /** The same text in base64, as Oktell sent it. */
    textb64: z.string().optional(),
  })
  .transform((v, ctx) => {
    if (v.text !== undefined) return { ...v, text: v.text };
    if (v.textb64 === undefined) {
      ctx.addIssue({ code: "custom", path: ["text"], message: "text (or textb64) is required" });
      return z.NEVER;
    }
    try {
      return { ...v, text: decodeTextB64(v.textb64) };
    } catch {
      ctx.addIssue({ code: "custom", path: ["textb64"], message: "textb64 is not base64 of UTF-8 text" });
      return z.NEVER;
    }
  });

/** An event whose properties the seeds do not describe: every property passes through. */
const undescribed = () => z.looseObject({});

export const oktellEvents = {
  // The administrator asked the client applications to unload (also OnServiceMessage 13101).
  "oktell.shutdownrequested": z.looseObject({}),
  // Restart requested after the TCP channel to the server dropped (also OnServiceMessage 13102).
  "oktell.restartrequested": z.looseObject({}),
  // The TCP channel to the server dropped (also OnServiceMessage 13103).
  "oktell.connectionlost": z.looseObject({}),
  // The current user's state changed (only the server changes it), with the redirect flag.
  "oktell.userstatechanged": z
    .looseObject({
      newstate: enumOf(EUserState),
      newstateCode: z.number().int().optional(),
      /** Call forwarding (redirect) is on. */
      redirect: flag(),
    })
    .superRefine(codeMatches(EUserState, "newstate")),
  // A system notification from the server or the client layer.
  "oktell.notify": z
    .looseObject({
      guid: id(),
      /** Hide the notification by itself. */
      autohide: flag(),
      /** Background colour (ARGB integer), used only by nltColor. */
      backcolor_argb: int().optional(),
      type: enumOf(ENotifyType),
      typeCode: z.number().int().optional(),
      datetime: isoLocalDateTime(),
      /** Saved in the database (visible in the notification history). */
      dbsaved: flag(),
      sender: z.string(),
      text: z.string(),
    })
    .superRefine(codeMatches(ENotifyType, "type")),
  // A new voice-mail message arrived (no body; the mailbox is read elsewhere).
  "oktell.voicemail": z.looseObject({}),
  // A message from another user through the internal messenger.
  "oktell.usermessage": z.looseObject({
    guid: id(),
    datetime: isoLocalDateTime(),
    /** Sender's user id (UUID). */
    senderid: id(),
    sendername: z.string(),
    text: z.string(),
  }),
  // A user's personal state changed: newstate is an EUserState, decoded like 111's (the seed
  // names the table, not the other properties, which pass through).
  "oktell.personalstatechanged": z
    .looseObject({
      newstate: enumOf(EUserState).optional(),
      newstateCode: z.number().int().optional(),
    })
    .superRefine(codeMatches(EUserState, "newstate")),

  // Asks the operator to confirm a call to a subscriber of a task run "with operator request";
  // answer with TM_SetConfirmResult (EConfirmResult).
  "oktell.tminterfaceconfirm": taskCall,
  // Informs the operator that a subscriber of a task is being dialled now.
  "oktell.tminterfacereserve": taskCall,
  // Hide what tminterfaceconfirm/tminterfacereserve showed (call cancelled, failed or answered).
  "oktell.tminterfaceclose": z.looseObject({ idtask: id() }),

  // Hardware (HAL) device events; described in other sections of the Oktell docs.
  "oktell.halsrvregsuccess": undescribed(),
  "oktell.halsrvregtimeout": undescribed(),
  "oktell.haldevicefound": undescribed(),
  "oktell.haldevicelost": undescribed(),
  "oktell.hallightenkey": undescribed(),
  "oktell.halheadsetparams": undescribed(),
  "oktell.halclearnfieldnow": undescribed(),
  "oktell.halclearnfieldnext": undescribed(),

  // Call, fax, ring, auto-dial (ACM) and line events; described in other sections.
  "oktell.commutationstarted": undescribed(),
  "oktell.commutationstopped": undescribed(),
  "oktell.faxstarted": undescribed(),
  "oktell.faxstopped": undescribed(),
  "oktell.faxfilesreceived": undescribed(),
  "oktell.ringstarted": undescribed(),
  "oktell.ringfinished": undescribed(),
  "oktell.acmstarted": undescribed(),
  "oktell.acmfinished": undescribed(),
  "oktell.flashholdaction": undescribed(),
  "oktell.chainstatechange": undescribed(),
  // A line changed state: state is an ELineState, decoded like 111's newstate (other
  // properties are not described in the seed and pass through).
  "oktell.linestatechange": z
    .looseObject({
      state: enumOf(ELineState).optional(),
      stateCode: z.number().int().optional(),
    })
    .superRefine(codeMatches(ELineState, "state")),
  "oktell.calldetected": undescribed(),

  // Conference events; described in other sections.
  "oktell.conferencelistchanged": undescribed(),
  "oktell.conferencecompositionchanged": undescribed(),
  "oktell.conferencecompetitorstatechanged": undescribed(),
  "oktell.conferenceentrancerequest": undescribed(),
  "oktell.conferenceentrancedenied": undescribed(),
  "oktell.conferenceentrancepermitted": undescribed(),
  "oktell.conferencenotifyinvite": undescribed(),
  "oktell.conferenceuserstatechanged": undescribed(),
} as const;

/** The names of the Oktell events. */
export type OktellEventName = keyof typeof oktellEvents;
