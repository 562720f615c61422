/**
 * Which value a plugin gets for a secret it declared. A plugin names its secrets, so without a
 * rule any plugin could declare any name and read it. Two rules close that:
 * - `"<plugin>:<NAME>"` in the config's secrets is NAME for that plugin only; once a name is
 *   given to a plugin this way, no other plugin can read it (not from the environment either);
 * - the environment fallback never serves hookd's own `HOOKD_*` variables (the API token, the
 *   store URL with its password).
 */
export interface SecretSources {
  /** The config's `secrets`. */
  configured: Readonly<Record<string, string | undefined>>;
  /** Where names missing from the config are read; undefined turns the fallback off. */
  environment: Readonly<Record<string, string | undefined>> | undefined;
}

export class SecretResolver {
  /** Names given to one plugin: name -> plugins that own it. */
  private readonly owned = new Map<string, Set<string>>();

  constructor(private readonly sources: SecretSources) {
    for (const key of Object.keys(sources.configured)) {
      const scoped = splitScoped(key);
      if (!scoped) continue;
      const owners = this.owned.get(scoped.name) ?? new Set<string>();
      owners.add(scoped.plugin);
      this.owned.set(scoped.name, owners);
    }
  }

  /** The value of `name` for `plugin`, or undefined when the plugin may not have it. */
  resolve(plugin: string, name: string): string | undefined {
    const { configured, environment } = this.sources;
    const scopedKey = `${plugin}:${name}`;
    if (Object.hasOwn(configured, scopedKey)) return configured[scopedKey];
    // A scoped name is read through its owner's scope only; `victim:TOKEN` cannot be declared.
    if (name.includes(":") || this.owned.has(name)) return undefined;
    if (Object.hasOwn(configured, name)) return configured[name];
    if (!environment || /^HOOKD_/i.test(name)) return undefined;
    return Object.hasOwn(environment, name) ? environment[name] : undefined;
  }
}

function splitScoped(key: string): { plugin: string; name: string } | undefined {
  const colon = key.indexOf(":");
  if (colon <= 0 || colon === key.length - 1) return undefined;
  return { plugin: key.slice(0, colon), name: key.slice(colon + 1) };
}
