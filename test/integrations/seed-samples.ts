/**
 * The XML samples of seeds 003 (service events) and 002 (user and line state, task manager
 * events), copied verbatim from /work/shared/seeds, the server's own examples. Tests encode
 * them as UTF-16 the way the server sends them.
 */

/** Seed 003: one document per event type, 101-114. Note the usermessage sample's id (112). */
export const seed003 = {
  shutdownrequested: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="101" name="shutdownrequested" />
 </data>
 </oktellcommapper>`,
  restartrequested: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="102" name="restartrequested" />
 </data>
 </oktellcommapper>`,
  connectionlost: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="103" name="connectionlost" />
 </data>
 </oktellcommapper>`,
  userstatechanged: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="111" name="userstatechanged">
     <property_simple key="newstate" value="7" name="usWOphone" />
     <property_simple key="redirect" value="0" />
   </event>
 </data>
 </oktellcommapper>`,
  notify: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="112" name="notify">
     <property_simple key="guid" value="00000000-0000-0000-0000-000000000000" />
     <property_simple key="autohide" value="1" />
     <property_simple key="backcolor_argb" value="0" />
     <property_simple key="type" value="8" name="nltPBXinfo" />
     <property_simple key="datetime" value="12.07.2008 18:35:06" />
     <property_simple key="dbsaved" value="1" />
     <property_cdata key="sender"><![CDATA[Системная АТС]]></property_cdata>
     <property_cdata key="text"><![CDATA[Зарегистрирована линия 16016]]></property_cdata>
   </event>
 </data>
 </oktellcommapper>`,
  voicemail: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="113" name="voicemail" />
 </data>
 </oktellcommapper>`,
  usermessage: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="112" name="usermessage">
     <property_simple key="guid" value="37ccb224-ff71-3836-c410-a73782ef8d19" />
     <property_simple key="datetime" value="12.07.2008 20:29:11" />
     <property_simple key="senderid" value="d03a522f-b399-aa37-cb2a-943cf24d113e" />
     <property_cdata key="sendername"><![CDATA[Бочкарев Евгений]]></property_cdata>
     <property_cdata key="text"><![CDATA[Зайди плиз как освободишься..]]></property_cdata>
   </event>
 </data>
 </oktellcommapper>`,
} as const;

/** Seed 002: the documents that carry an event (task manager 121 and 123). */
export const seed002Events = {
  tminterfaceconfirm: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="121" name="tminterfaceconfirm">
     <property_simple key="idtask" value="0f398eb4-5d78-446c-84f4-6892ab72751b" />
     <property_simple key="idproject" value="ab37c6e6-e983-458a-8621-5e0921ade3d1" />
     <property_cdata key="taskname"><![CDATA[Прозвон клиентов]]></property_cdata>
     <property_simple key="taskcode" value="" />
     <property_simple key="idlist" value="9ac6f54c-d042-4e89-b9a3-5ad2e20c3410" />
     <property_simple key="idinlist" value="67" />
     <property_simple key="number" value="120151112" />
     <property_cdata key="textb64"><![CDATA[0JLRiyDQt9Cw0YDQtdC30LXRgNCy0LjRgNC+0LLQsNC90Ysg0L3QsCDQstGL0L/QvtC70L3QtdC90LjQtSDQt9Cw0LTQsNGH0LgKCtCY0L3RhNC+0YDQvNCw0YbQuNGPOgoK0JfQsNC00LDRh9CwIMKr0JLQuNGA0YLRg9Cw0LvRjNC90LDRjyDQvNCw0YjQuNC90LDCuwoKCtCX0LLQvtC90L7QuiDQvdCwINC90L7QvNC10YA6IDEyMDE1MTExMgoK0J/RgNC+0LTQvtC70LbQuNGC0Ywg0LTQvtC30LLQvtC9INC/0L4g0YPQutCw0LfQsNC90L3Ri9C8INC/0LDRgNCw0LzQtdGC0YDQsNC8PyojKg==]]></property_cdata>
   </event>
 </data>
 </oktellcommapper>`,
  tminterfaceclose: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data>
   <event id="123" name="tminterfaceclose">
     <property_simple key="idtask" value="0f398eb4-5d78-446c-84f4-6892ab72751b" />
   </event>
 </data>
 </oktellcommapper>`,
} as const;

/** Seed 002: TMInterfaceReserve (122) is "the format of 121 with its own id and name". */
export const tminterfacereserve = seed002Events.tminterfaceconfirm.replace('<event id="121" name="tminterfaceconfirm">', '<event id="122" name="tminterfacereserve">');

/** Seed 002: method answers and arguments (`<data name="...">`), which are not events. */
export const seed002NotEvents = {
  userinfo: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data name="userinfo">
   <property_simple key="id" value="da803f01-ea77-40fa-bc9d-e2efb36fd5a8" />
   <property_simple key="type" value="1" name="utUser" />
   <property_cdata key="name"><![CDATA[Петр]]></property_cdata>
   <property_simple key="isoperator" value="1" />
   <property_simple key="group" value="c4e3b424-3048-4cce-a2e4-033c532a7d99" name="Программисты" />
   <property_cdata key="login"><![CDATA[Peter]]></property_cdata>
   <property_cdata key="password"><![CDATA[123]]></property_cdata>
   <property_cdata key="role" value="41fbf675-8f73-488e-83ca-c108b915f51d"><![CDATA[Администратор]]></property_cdata>
   <property_simple key="callerid" value="" />
   <property_cdata key="info"><![CDATA[]]></property_cdata>
   <property_collection name="properties" count="1">
     <property_set name="role" id="41fbf675-8f73-488e-83ca-c108b915f51d">
       <property_cdata key="extwp" value="1"><![CDATA[Расширенное рабочее место]]></property_cdata>
       <property_cdata key="candeleterecords" value="1"><![CDATA[Возможность удалять записи статистики]]></property_cdata>
       <property_cdata key="showspecialscripts" value="1"><![CDATA[Показывать cистемные сценарии]]></property_cdata>
       <property_cdata key="caneditreports" value="1"><![CDATA[Возможность редактировать индикаторы call-центра]]></property_cdata>
       <property_cdata key="caneditindicators" value="1"><![CDATA[Возможность редактировать отчеты статистики сall-центра]]></property_cdata>
       <property_cdata key="viewsvctasks" value="1"><![CDATA[Доступ к служебным задачам]]></property_cdata>
       <property_cdata key="canuseacm" value="1"><![CDATA[Доступ к сервису автодозвона]]></property_cdata>
       <property_cdata key="canusemessagingout" value="1"><![CDATA[Возможность отправки сообщений]]></property_cdata>
       <property_cdata key="canusefax" value="1"><![CDATA[Доступ к офис-факсу]]></property_cdata>
       <property_cdata key="showphoneindialogcards" value="1"><![CDATA[Отображать телефон в диалоговых формах]]></property_cdata>
       <property_cdata key="viewoffice" value="1"><![CDATA[Офис]]></property_cdata>
       <property_cdata key="viewofficepersonels" value="1"><![CDATA[Сотрудники]]></property_cdata>
       <property_cdata key="viewofficestatistics" value="1"><![CDATA[Статистика]]></property_cdata>
       <property_cdata key="viewofficemycalls" value="1"><![CDATA[Мои звонки]]></property_cdata>
       <property_cdata key="viewofficeclients" value="1"><![CDATA[Клиенты]]></property_cdata>
       <property_cdata key="viewofficecabinet" value="1"><![CDATA[Кабинет]]></property_cdata>
       <property_cdata key="viewofficeredirect" value="1"><![CDATA[Переадресация]]></property_cdata>
       <property_cdata key="viewcallcenter" value="1"><![CDATA[Call-центр]]></property_cdata>
       <property_cdata key="viewcallcenteroperators" value="1"><![CDATA[Операторы]]></property_cdata>
       <property_cdata key="viewcallcenterprojects" value="1"><![CDATA[Проекты]]></property_cdata>
       <property_cdata key="viewcallcenterlists" value="1"><![CDATA[Таблицы абонентов]]></property_cdata>
       <property_cdata key="viewcallcenterscripts" value="1"><![CDATA[Сценарии]]></property_cdata>
       <property_cdata key="viewcallcentertasks" value="1"><![CDATA[Задачи]]></property_cdata>
       <property_cdata key="viewcallcentercontrolevents" value="1"><![CDATA[Контрольные события]]></property_cdata>
       <property_cdata key="viewcallcenterresources" value="1"><![CDATA[Ресурсы]]></property_cdata>
       <property_cdata key="viewcallcenterindicators" value="1"><![CDATA[Индикаторы]]></property_cdata>
       <property_cdata key="viewcallcenterstat" value="1"><![CDATA[Статистика call-центра]]></property_cdata>
       <property_cdata key="viewcallcenterreports" value="1"><![CDATA[Отчеты]]></property_cdata>
       <property_cdata key="viewcallcenterworkplace" value="1"><![CDATA[Мое рабочее место]]></property_cdata>
       <property_cdata key="viewadmin" value="1"><![CDATA[Администрирование]]></property_cdata>
       <property_cdata key="viewadminusers" value="1"><![CDATA[Пользователи]]></property_cdata>
       <property_cdata key="viewadminofficemap" value="1"><![CDATA[Карта сети]]></property_cdata>
       <property_cdata key="viewadminlines" value="1"><![CDATA[Линии]]></property_cdata>
       <property_cdata key="viewadminrights" value="1"><![CDATA[Права]]></property_cdata>
       <property_cdata key="viewadmininnernumbers" value="1"><![CDATA[Внутренние номера]]></property_cdata>
       <property_cdata key="viewadminclientforms" value="1"><![CDATA[Управление клиентами]]></property_cdata>
       <property_cdata key="viewadminsettings" value="1"><![CDATA[Общие настройки]]></property_cdata>
       <property_cdata key="viewadminscripts" value="1"><![CDATA[Сценарии]]></property_cdata>
       <property_cdata key="viewadminmonitoring" value="1"><![CDATA[Мониторинг]]></property_cdata>
       <property_cdata key="viewadminmobilemasks" value="1"><![CDATA[Мобильные маски]]></property_cdata>
       <property_cdata key="viewadminmobilestatistics" value="1"><![CDATA[Мобильная статистика]]></property_cdata>
       <property_cdata key="viewofficeclientscustomfilter" value="1"><![CDATA[Произвольные фильтры]]></property_cdata>
       <property_cdata key="viewofficeclientsadd" value="1"><![CDATA[Добавление клиентов]]></property_cdata>
       <property_cdata key="viewofficeclientsdelete" value="1"><![CDATA[Удаление клиентов]]></property_cdata>
       <property_cdata key="viewofficeclientsedit" value="1"><![CDATA[Редактирование клиентов]]></property_cdata>
     </property_set>
   </property_collection>
 </data>
 </oktellcommapper>`,
  userstate: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data name="userstate">
   <property_set name="currentstateinfo">
     <property_simple key="state" value="1" name="usReady" />
     <property_simple key="redirect" value="0" />     
   </property_set>
 </data>
 </oktellcommapper>`,
  setuserstate: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data name="userstate">
   <property_set name="currentstateinfo">
     <property_simple key="state" value="2" />
        <property_cdata key="description"><![CDATA[Ушел на обед]]></property_cdata>
     <property_simple key="redirect" value="0" />     
   </property_set>
 </data>
 </oktellcommapper>`,
  linestate: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data name="linestate">
   <property_set name="currentlinestateinfo">
     <property_simple key="state" value="4" name="lsReady" />
   </property_set>
 </data>
 </oktellcommapper>`,
  confirmresult: `<?xml version="1.0" encoding="utf-16"?>
 <oktellcommapper version="80710">
 <data name="confirmresult">
   <property_set name="confirmresult">
     <property_simple key="result" value="0" /> <span style="color:darkviolet"><!-- варианты: 0/1/2 или ok/skip/delete --></span>
   </property_set>
 </data>
 </oktellcommapper>`,
} as const;

/** The base64 of the tminterfaceconfirm sample, decoded (seed 002). */
export const TMINTERFACECONFIRM_TEXT_START = "Вы зарезервированы на выполнение задачи";

/** UTF-16 little-endian bytes, with the BOM the server writes unless `bom` is false. */
export function utf16le(text: string, bom = true): Buffer {
  const body = Buffer.from(text, "utf16le");
  return bom ? Buffer.concat([Buffer.from([0xff, 0xfe]), body]) : body;
}

/** UTF-16 big-endian bytes, with or without a BOM. */
export function utf16be(text: string, bom = true): Buffer {
  const body = Buffer.from(text, "utf16le").swap16();
  return bom ? Buffer.concat([Buffer.from([0xfe, 0xff]), body]) : body;
}
