/**
 * The CRM's events.php events (seed 004), with the argument names the CRM sends.
 *
 * Conventions:
 * - ids (clid, pid, did, id, autor, user, olduser, newuser, payer) use int(): PHP forms send
 *   numeric strings. The seed types a few of them "string" (person.add, invoice.add/edit `user`);
 *   they are still employee/record ids, so int() takes both spellings.
 * - id lists (clids, pids) use intList(); they default to [] because a PHP form cannot encode
 *   an empty array (the key is simply missing).
 * - money (summa, summaNew) stays a decimal string ("10340.00"), as the seed types it.
 * - a field is optional only where the seed says it may be missing ("если добавлен(а)",
 *   "Клиента/Контакта"); maybeInt() also takes "" and null for those. userUID is optional too:
 *   it is the employee's UID "in an external system", which exists only with an integration.
 */
import { z } from "zod";
import { decimal, int, intList, maybeInt, maybeStr, params, str } from "./fields.ts";

/** entry.status codes: `['0' => 'Новое', '1' => 'Обработано', '2' => 'Отменено']`. */
export const EntryStatus = { 0: "new", 1: "processed", 2: "cancelled" } as const;

/** Who did it (`autor`) and who is responsible (`user`): sent with most client/person events. */
const actor = { autor: int(), user: int() };

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

/** Fields of invoice.add / invoice.edit. */
const invoiceChange = {
  did: int(),
  autor: int(),
  user: int(),
  userUID: maybeStr(),
  summa: decimal(),
  invoice: str(),
};

/** Fields of invoice.doit / invoice.expressadd (a payment). */
const payment = {
  did: int(),
  autor: int(),
  userUID: maybeStr(),
  invoice: str(),
  summa: decimal(),
  summaNew: decimal(),
};

export const crmEvents = {
  // Clients were imported (a batch of new client and contact records).
  "client.import": z.object({ clids: intList().default([]), pids: intList().default([]), ...actor }),
  // A client and/or contact was added through the express form or the lead handler.
  "client.expressadd": z.object({ pid: maybeInt(), clid: maybeInt(), ...actor }),
  // A client was added through the regular form or from an entry.
  "client.add": z.object({ clid: int(), ...actor }),
  // A client was edited; newparam holds the changed parameters.
  "client.edit": z.object({ clid: int(), ...actor, newparam: params() }),
  // A client was deleted.
  "client.delete": z.object({ clid: int(), ...actor }),
  // A client's bank/legal details (requisites) were changed.
  "client.change.recv": z.object({ clid: int(), ...actor }),
  // The employee responsible for a client was changed.
  "client.change.user": z.object({ clid: int(), ...actor }),

  // A contact was added through the regular form or from an entry.
  "person.add": z.object({ pid: int(), ...actor }),
  // A contact was edited.
  "person.edit": z.object({ pid: int(), ...actor }),
  // A contact was deleted.
  "person.delete": z.object({ pid: int(), ...actor }),
  // The employee responsible for a contact was changed.
  "person.change.user": z.object({ pid: int(), ...actor }),

  // A deal was added (userUID: the responsible employee's UID in an external system).
  "deal.add": z.object({ did: int(), autor: int(), userUID: maybeStr() }),
  // A deal's main information was edited; newparam holds the changed parameters.
  "deal.edit": z.object({ did: int(), autor: int(), newparam: params() }),
  // A deal was deleted.
  "deal.delete": z.object({ did: int(), autor: int() }),
  // The employee responsible for a deal was changed (from olduser to newuser, with a comment).
  "deal.change.user": z.object({
    did: int(),
    autor: int(),
    olduser: int(),
    newuser: int(),
    comment: z.string(),
  }),
  // A deal moved to another stage (stages are numbers such as 10, 20).
  "deal.change.step": z.object({ did: int(), autor: int(), stepOld: int(), stepNew: int() }),
  // A deal was closed with an actual amount (summa, e.g. "10340.00") and a status (e.g. "Победа").
  "deal.close": z.object({ did: int(), autor: int(), summa: decimal(), status: z.string() }),

  // An invoice was added.
  "invoice.add": z.object(invoiceChange),
  // An invoice was changed.
  "invoice.edit": z.object(invoiceChange),
  // An invoice was marked paid (summa may be partial; summaNew is the created payment's amount).
  "invoice.doit": z.object(payment),
  // A payment was entered without issuing an invoice.
  "invoice.expressadd": z.object(payment),

  // A reminder (task) was added.
  "task.add": z.object({ id: int(), autor: int() }),
  // A reminder was edited.
  "task.edit": z.object({ id: int(), autor: int() }),
  // A reminder was done.
  "task.doit": z.object({ id: int(), autor: int() }),

  // A record was added to the activity history.
  "history.add": z.object({ id: int(), autor: int() }),
  // An activity history record was edited.
  "history.edit": z.object({ id: int(), autor: int() }),
  // An activity history record was done (the seed repeats the reminder wording).
  "history.doit": z.object({ id: int(), autor: int() }),

  // A lead (request) was processed; no other event fires for it. clid/pid/did only if created.
  "lead.do": z.object({ id: int(), autor: int(), clid: maybeInt(), pid: maybeInt(), did: maybeInt() }),

  // An entry (customer inquiry) was added; did only if a deal was created.
  "entry.add": z.object({ id: int(), clid: int(), pid: int(), did: maybeInt(), autor: int() }),
  // An entry's status changed, e.g. cancelled (status 0 new, 1 processed, 2 cancelled; since 2019.3).
  "entry.status": z.object({ id: int(), autor: int(), status: int().pipe(z.literal([0, 1, 2])) }),

  // A Document (contract) was added.
  "contract.add": z.object(document),
  // A Document (contract) was edited.
  "contract.edit": z.object(document),
  // A Document (contract) was deleted.
  "contract.delete": z.object(documentDelete),

  // An Act (akt) was added (the seed calls it a Document too).
  "akt.add": z.object(document),
  // An Act was edited.
  "akt.edit": z.object(document),
  // An Act was deleted.
  "akt.delete": z.object(documentDelete),
} as const;

/** The names of the CRM events. */
export type CrmEventName = keyof typeof crmEvents;
