/**
 * The CRM's events.php events (seed 004), with the argument names the CRM sends.
 *
 * Conventions (the README's "CRM arguments" table lists each decision):
 * - every event is a loose object: fields the seed does not list (custom CRM fields, a newer
 *   CRM's extras) are kept and reach the handlers as sent; only the listed ones are checked.
 * - ids the seed types "integer" (clid, pid, did, id, autor, user, olduser, newuser, payer) use
 *   int(): PHP forms send numeric strings, JSON senders numbers; both become numbers.
 * - where the seed types an argument "string" it is a string, even an id: person.add's pid,
 *   autor and user, invoice.add/edit's user (str() also takes a JSON number, as its text).
 * - id lists (clids, pids) use intList(); they default to [] because a PHP form cannot encode
 *   an empty array (the key is simply missing).
 * - money (summa, summaNew) stays a decimal string ("10340.00"), as the seed types it.
 * - a field is optional only where the seed says it may be missing ("если добавлен(а)",
 *   "Клиента/Контакта"); maybeInt() also takes "" and null for those. userUID is required, as the seed
 *   lists it without a qualifier; it may be "" (an employee with no external UID) or null.
 */
import { z } from "zod";
import { decimal, int, intList, maybeInt, nullableStr, params, str } from "../../base/catalog-fields.ts";

/** entry.status codes: `['0' => 'Новое', '1' => 'Обработано', '2' => 'Отменено']`. */
export const EntryStatus = { 0: "new", 1: "processed", 2: "cancelled" } as const;

/** Who did it (`autor`) and who is responsible (`user`): sent with most client/person events. */
const actor = { autor: int(), user: int() };

/** An event's arguments: the listed ones are checked, any other field is kept as sent. */
const event = <const S extends z.core.$ZodShape>(shape: S) => z.looseObject(shape);

/** Fields of a Document (contract) or Act (akt) add/edit. */
const document = {
  id: int(),
  number: str(),
  datum: str(),
  payer: int(),
  clid: int(),
  pid: int(),
  did: maybeInt(),
  autor: int(),
};

/** Fields of a Document (contract) or Act (akt) delete. */
const documentDelete = { id: int(), did: maybeInt(), autor: int() };

/** akt.delete: the seed lists only id and did (no autor); autor is taken when sent. */
const aktDelete = { id: int(), did: maybeInt(), autor: int().optional() };

/** Fields of invoice.add / invoice.edit. */
const invoiceChange = {
  did: int(),
  autor: int(),
  user: str(),
  userUID: nullableStr(),
  summa: decimal(),
  invoice: str(),
};

/** Fields of invoice.doit / invoice.expressadd (a payment). */
const payment = {
  did: int(),
  autor: int(),
  userUID: nullableStr(),
  invoice: str(),
  summa: decimal(),
  summaNew: decimal(),
};

export const crmEvents = {
  // Clients were imported (a batch of new client and contact records).
  "client.import": event({ clids: intList().default([]), pids: intList().default([]), ...actor }),
  // A client and/or contact was added through the express form or the lead handler.
  "client.expressadd": event({ pid: maybeInt(), clid: maybeInt(), ...actor }),
  // A client was added through the regular form or from an entry.
  "client.add": event({ clid: int(), ...actor }),
  // A client was edited; newparam holds the changed parameters.
  "client.edit": event({ clid: int(), ...actor, newparam: params() }),
  // A client was deleted.
  "client.delete": event({ clid: int(), ...actor }),
  // A client's bank/legal details (requisites) were changed.
  "client.change.recv": event({ clid: int(), ...actor }),
  // The employee responsible for a client was changed.
  "client.change.user": event({ clid: int(), ...actor }),

  // A contact was added through the regular form or from an entry.
  "person.add": event({ pid: str(), autor: str(), user: str() }),
  // A contact was edited.
  "person.edit": event({ pid: int(), ...actor }),
  // A contact was deleted.
  "person.delete": event({ pid: int(), ...actor }),
  // The employee responsible for a contact was changed.
  "person.change.user": event({ pid: int(), ...actor }),

  // A deal was added (userUID: the responsible employee's UID in an external system).
  "deal.add": event({ did: int(), autor: int(), userUID: nullableStr() }),
  // A deal's main information was edited; newparam holds the changed parameters.
  "deal.edit": event({ did: int(), autor: int(), newparam: params() }),
  // A deal was deleted.
  "deal.delete": event({ did: int(), autor: int() }),
  // The employee responsible for a deal was changed (from olduser to newuser, with a comment).
  "deal.change.user": event({
    did: int(),
    autor: int(),
    olduser: int(),
    newuser: int(),
    comment: z.string(),
  }),
  // A deal moved to another stage (stages are numbers such as 10, 20).
  "deal.change.step": event({ did: int(), autor: int(), stepOld: int(), stepNew: int() }),
  // A deal was closed with an actual amount (summa, e.g. "10340.00") and a status (e.g. "Победа").
  "deal.close": event({ did: int(), autor: int(), summa: decimal(), status: z.string() }),

  // An invoice was added.
  "invoice.add": event(invoiceChange),
  // An invoice was changed.
  "invoice.edit": event(invoiceChange),
  // An invoice was marked paid (summa may be partial; summaNew is the created payment's amount).
  "invoice.doit": event(payment),
  // A payment was entered without issuing an invoice.
  "invoice.expressadd": event(payment),

  // A reminder (task) was added.
  "task.add": event({ id: int(), autor: int() }),
  // A reminder was edited.
  "task.edit": event({ id: int(), autor: int() }),
  // A reminder was done.
  "task.doit": event({ id: int(), autor: int() }),

  // A record was added to the activity history.
  "history.add": event({ id: int(), autor: int() }),
  // An activity history record was edited.
  "history.edit": event({ id: int(), autor: int() }),
  // An activity history record was done (the seed repeats the reminder wording).
  "history.doit": event({ id: int(), autor: int() }),

  // A lead (request) was processed; no other event fires for it. clid/pid/did only if created.
  "lead.do": event({ id: int(), autor: int(), clid: maybeInt(), pid: maybeInt(), did: maybeInt() }),

  // An entry (customer inquiry) was added; did only if a deal was created.
  "entry.add": event({ id: int(), clid: int(), pid: int(), did: maybeInt(), autor: int() }),
  // An entry's status changed, e.g. cancelled (status 0 new, 1 processed, 2 cancelled; since 2019.3).
  "entry.status": event({ id: int(), autor: int(), status: int().pipe(z.literal([0, 1, 2])) }),

  // A Document (contract) was added.
  "contract.add": event(document),
  // A Document (contract) was edited.
  "contract.edit": event(document),
  // A Document (contract) was deleted.
  "contract.delete": event(documentDelete),

  // An Act (akt) was added (the seed calls it a Document too).
  "akt.add": event(document),
  // An Act was edited.
  "akt.edit": event(document),
  // An Act was deleted.
  "akt.delete": event(aktDelete),
} as const;

/** The names of the CRM events. */
export type CrmEventName = keyof typeof crmEvents;
